"""Aspect-based opinions: term candidates, the estimator contract, the shipped model, bad input, bench and CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.errors import InputError
from shoplm.insight import aspects as aspects_module
from shoplm.insight.aspect_terms import Span, candidate_terms, split_clauses, split_sentences
from shoplm.insight.aspects import CATEGORIES, AspectExtractor, default_model_path
from shoplm.insight.aspects_bench import load_aspect_file, run_aspect_benchmark
from tests.estimator_contract import EstimatorContract
from tests.lm.fakes import HashEncoder

runner = CliRunner()

TOY = [
    {"text": "the battery lasts long", "language": "en",
     "aspects": [{"term": "battery", "category": "battery", "polarity": "positive", "from": 4, "to": 11}]},
    {"text": "屏幕太暗了", "language": "zh",
     "aspects": [{"term": "屏幕", "category": "screen", "polarity": "negative", "from": 0, "to": 2}]},
    {"text": "bought it for my son", "language": "en", "aspects": []},
]  # fmt: skip

JSONL = [
    {"text": "物流很快，但是屏幕有坏点", "language": "zh", "aspects": [
        {"term": "物流", "category": "shipping", "polarity": "positive", "from": 0, "to": 2},
        {"term": "屏幕", "category": "screen", "polarity": "negative", "from": 7, "to": 9}]},
    {"text": "The battery dies within hours.", "language": "en", "aspects": [
        {"term": "battery", "category": "battery", "polarity": "negative"}]},
    {"text": "Way too expensive for what it is.", "language": "en", "aspects": [
        {"term": None, "category": "price", "polarity": "negative"}]},
]  # fmt: skip

SEMEVAL = """<?xml version="1.0" encoding="UTF-8"?>
<sentences>
  <sentence id="1"><text>The food was great but the service was slow.</text>
    <aspectTerms><aspectTerm term="food" polarity="positive" from="4" to="8"/>
      <aspectTerm term="service" polarity="negative" from="27" to="34"/></aspectTerms>
    <aspectCategories><aspectCategory category="food" polarity="positive"/>
      <aspectCategory category="service" polarity="negative"/></aspectCategories></sentence>
  <sentence id="2"><text>Nice place, but the prices are high.</text>
    <aspectTerms><aspectTerm term="prices" polarity="negative" from="20" to="26"/>
      <aspectTerm term="place" polarity="conflict" from="5" to="10"/></aspectTerms>
    <aspectCategories><aspectCategory category="price" polarity="negative"/>
      <aspectCategory category="ambience" polarity="positive"/></aspectCategories></sentence>
</sentences>
"""


# -- text rules (no model) -------------------------------------------------------------------
def test_clauses_keep_offsets_and_cut_at_contrast_words() -> None:
    text = "质量不错，但是物流太慢。Fast!"
    clauses = [c for s in split_sentences(text, "zh") for c in split_clauses(s, "zh")]
    assert [c.text for c in clauses][:2] == ["质量不错", "但是物流太慢。"]
    assert all(text[c.start : c.end] == c.text for c in clauses)
    en = split_clauses("the zoom is great , but the lens cap falls off", "en")
    assert [c.text for c in en] == ["the zoom is great", "but the lens cap falls off"]


def test_candidate_terms_lexicon_first_then_open_terms() -> None:
    lexicon = {"battery life": "battery", "battery": "battery", "price": "price"}
    terms = candidate_terms(Span("the battery life and the remote control", 0, 39), "en", lexicon)
    assert [(t.text, t.category) for t in terms] == [("battery life", "battery"), ("remote control", None)]
    assert candidate_terms(Span("priceless fun", 0, 13), "en", lexicon) == []  # whole words only
    zh = candidate_terms(Span("但是这个屏幕很清晰", 0, 9), "zh", {})
    assert [t.text for t in zh] == ["屏幕"]


# -- the estimator contract, on the fast stand-in encoder ---------------------------------------
class TestAspectExtractorContract(EstimatorContract):
    def make_estimator(self) -> AspectExtractor:
        return AspectExtractor(ngram_features=300, l2=1e-3, calibration_folds=0).use(encoder=HashEncoder(dim=16))

    def fit_estimator(self, estimator: AspectExtractor) -> AspectExtractor:  # type: ignore[override]
        return estimator.fit(TOY, weak=[("great value", "positive"), ("很差", "negative")])

    def probe(self, estimator: AspectExtractor) -> np.ndarray:  # type: ignore[override]
        estimator.use(encoder=HashEncoder(dim=16))  # a loaded model would otherwise open e5
        texts = ["the battery lasts long", "屏幕太暗了，物流很快"]
        confidences = [a.confidence for r in estimator.extract(texts) for a in r.aspects]
        polarity = [c for _, c in estimator.term_polarities([("屏幕太暗了", 0, 2, "zh")])]
        return np.array([*confidences, *polarity, *estimator.prototypes_.ravel()])


# -- the shipped model, on e5 ----------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped(embedding_cache: Path) -> AspectExtractor:
    from shoplm.lm import CachedEncoder, load_encoder

    encoder = CachedEncoder(load_encoder("e5-onnx", cache=False, threads=1), embedding_cache)
    return AspectExtractor.load(default_model_path()).use(encoder=encoder)


def _found(result: aspects_module.ReviewAspects) -> set[tuple[str | None, str, str]]:
    return {(a.term, a.category, a.polarity) for a in result.aspects}


def test_shipped_model_reads_both_languages(shipped: AspectExtractor) -> None:
    zh, en = shipped.extract(["物流很快，但是屏幕有坏点", "The battery dies within hours, but the screen is gorgeous."])
    assert {("物流", "shipping", "positive"), ("屏幕", "screen", "negative")} <= _found(zh)
    assert {("battery", "battery", "negative"), ("screen", "screen", "positive")} <= _found(en)
    assert all(zh.text[a.start : a.end] == a.term for a in zh.aspects if a.term)
    implicit = shipped.extract(["Way too expensive for what it is."])[0]
    assert ("price", "negative") in {(a.category, a.polarity) for a in implicit.aspects}


def test_bad_input_gets_a_defined_result(shipped: AspectExtractor) -> None:
    long_review = "The price is fair. " * 400
    results = shipped.extract(
        ["", "   ", None, "Отличный товар, всем советую", "👍👍👍", "<p>质量&amp;做工都<b>很好</b></p>", long_review]
    )
    assert [r.skipped for r in results] == ["empty", "empty", "empty", "unsupported_language", "no_words", None, None]
    assert all(r.aspects == [] for r in results[:5])
    html = results[5]
    assert "<" not in html.text and ("质量", "quality", "positive") in _found(html)
    long = results[6]
    assert long.truncated and len(long.text) <= shipped.max_chars
    assert max(a.sentence for a in long.aspects) < shipped.max_sentences
    with pytest.raises(TypeError):
        shipped.extract("one text, not a list")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="languages"):
        shipped.extract(["a", "b"], languages=["en"])


def test_term_polarity_reads_the_terms_clause(shipped: AspectExtractor) -> None:
    text = "the screen is gorgeous , but the battery is awful ."
    polarities = shipped.term_polarities([(text, 4, 10, "en"), (text, 33, 40, "en")])
    assert [p for p, _ in polarities] == ["positive", "negative"]


# -- the benchmark ---------------------------------------------------------------------------
@pytest.fixture
def data_files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    jsonl = tmp_path / "tiny.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in JSONL) + "\n", encoding="utf-8")
    xml = tmp_path / "tiny.xml"
    xml.write_text(SEMEVAL, encoding="utf-8")
    yield jsonl, xml


def test_semeval_xml_maps_categories_and_drops_conflict(data_files: tuple[Path, Path]) -> None:
    rows = load_aspect_file(data_files[1])
    assert [r["text"][:8] for r in rows] == ["The food", "Nice pla"]
    categories = {a["category"] for r in rows for a in r["aspects"] if a["term"] is None}
    assert categories == {"taste", "service", "price"}  # food -> taste; ambience has no counterpart
    assert {a["polarity"] for r in rows for a in r["aspects"]} >= {"conflict"}


def test_benchmark_writes_exactly_the_headline_and_a_chart(
    shipped: AspectExtractor, data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out" / "aspects.json"
    report = run_aspect_benchmark(data_files[0], shipped, out)
    assert json.loads(out.read_text()) == {k: report[k] for k in ("accuracy", "macro_f1", "category_f1")}
    assert out.with_suffix(".png").stat().st_size > 1000 and out.with_name("aspects.details.json").is_file()
    assert report["n_terms_scored"] == 3 and report["accuracy"] == 1.0  # three clear-cut terms
    assert set(report["systems"]) == {"head", "zero_shot", "keyword"}
    assert report["systems"]["head"]["category_f1"] > report["systems"]["keyword"]["category_f1"] - 1e-9
    xml = run_aspect_benchmark(data_files[1], shipped)
    assert xml["n_terms_scored"] == 3 and xml["n_conflict_dropped"] == 1
    assert set(xml["systems"]["head"]["per_category_support"]) <= set(CATEGORIES)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ('{"text": "ok", "aspects": []}\nnot json\n', ":2: not a JSON line"),
        ('{"aspects": []}\n', 'needs a "text"'),
        ("<sentences><sentence>", "not well-formed XML"),
    ],
)
def test_bad_benchmark_files_exit_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["bench", "aspects", "--data", str(bad), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_benchmark_file_exits_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["bench", "aspects", "--data", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.output


# -- the commands ----------------------------------------------------------------------------
def test_cli_reads_a_review_and_runs_the_bench(
    shipped: AspectExtractor, data_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aspects_module, "load_default_extractor", lambda settings, path=None: shipped)
    shown = runner.invoke(
        app, ["reviews", "aspects", "物流很快，但是屏幕有坏点", "--json", "--data-dir", str(tmp_path)]
    )
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert {(a["term"], a["category"]) for a in body["aspects"]} >= {("物流", "shipping"), ("屏幕", "screen")}
    out = tmp_path / "bench.json"
    bench = runner.invoke(app, ["bench", "aspects", "--data", str(data_files[1]), "--out", str(out)])
    assert bench.exit_code == 0, bench.output
    assert set(json.loads(out.read_text())) == {"accuracy", "macro_f1", "category_f1"}
    bad = runner.invoke(app, ["reviews", "aspects", "good", "--language", "fr", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "zh or en" in bad.output


def test_cli_names_a_missing_model(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["reviews", "aspects", "good", "--model", str(tmp_path / "nope"), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "train-aspects" in result.output
