"""Review sentiment over the store: scored once per model version, identical texts reused, on ingest, by CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.app.reviews import after_ingest, score_reviews
from shoplm.cli import app
from shoplm.config import Settings
from shoplm.insight.sentiment import ReviewSentiment
from shoplm.store import Store
from shoplm.store.review_sentiment import text_hash
from shoplm.store.schema import reviews as reviews_table
from tests.lm.fakes import HashEncoder

runner = CliRunner()

TOY_TEXTS = ["good quality", "great value", "很好", "非常好", "bad quality", "awful value", "很差", "非常差"]


@pytest.fixture(scope="module")
def toy_model() -> ReviewSentiment:
    model = ReviewSentiment(ngram_features=200, l2=1e-3).use(encoder=HashEncoder(dim=16))
    return model.fit(TOY_TEXTS * 2, [1, 1, 1, 1, 0, 0, 0, 0] * 2)


def _reviews(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "user_id": [None] * len(rows),
            "rating": [None] * len(rows),
            "text": [r[2] for r in rows],
            "language": [""] * len(rows),
            "ts_ms": list(range(1, len(rows) + 1)),
        }
    )


def test_each_review_is_scored_once_and_identical_texts_reuse_the_score(toy_model: ReviewSentiment) -> None:
    store = Store.open("sqlite://")
    settings = Settings(sentiment={"batch_size": 2})  # several batches: a copy in a later batch is reused
    store.upsert(
        "reviews",
        _reviews(
            [
                ("r1", "i1", "good quality"),
                ("r2", "i1", "很差"),
                ("r3", "i2", "good quality"),  # the same text as r1
                ("r4", "i2", "   "),
                ("r5", "i2", "Das ist sehr gut und nicht teuer"),
            ]
        ),
    )
    first = score_reviews(store, settings, model=toy_model)
    assert (first.total, first.scored, first.reused, first.skipped) == (5, 2, 1, 2)
    assert first.model_version == toy_model.model_version
    frame = store.review_sentiment.frame(include_skipped=True).set_index("review_id")
    assert frame.loc["r1", "p_positive"] == frame.loc["r3", "p_positive"]
    assert frame.loc["r1", "text_hash"] == text_hash("good quality")
    assert frame.loc["r4", "skipped"] == "empty" and frame.loc["r5", "skipped"] == "unsupported_language"
    assert frame.loc["r1", "polarity"] == "positive" and frame.loc["r2", "polarity"] == "negative"

    # Nothing new: nothing scored. A new review with a known text costs a lookup.
    assert score_reviews(store, settings, model=toy_model).total == 0
    store.upsert("reviews", _reviews([("r6", "i3", "很差")]))
    again = score_reviews(store, settings, model=toy_model)
    assert (again.total, again.reused, again.scored) == (1, 1, 0)
    # --rescore scores everything with the model again.
    assert score_reviews(store, settings, model=toy_model, rescore=True).scored == 4

    summary = store.review_sentiment.item_summary("i2")
    assert summary["reviews"] == 3 and summary["scored"] == 1 and summary["skipped"] == 2
    assert summary["counts"] == {"positive": 1, "neutral": 0, "negative": 0}
    by_category = store.review_sentiment.counts_by_category()
    assert sum(g["total"] for g in by_category) == 4 and by_category[0]["category"] == "(unknown)"

    # A review that is erased takes its score with it on the next pass.
    store.delete("reviews", reviews_table.c.review_id == "r6")
    score_reviews(store, settings, model=toy_model)
    assert "r6" not in store.review_sentiment.scored_ids() and store.review_sentiment.count() == 5
    assert after_ingest(store, settings, ["items"]) is None  # not a review ingest: nothing runs


def test_ingest_scores_reviews_and_the_commands_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    reviews = tmp_path / "reviews.jsonl"
    texts = {"a": "质量很好，物流也快，非常满意", "b": "Broke after two days, awful.", "c": " "}
    rows = [
        {"review_id": rid, "item_id": "i1", "rating": 3, "text": text, "timestamp": f"2026-01-0{day}T10:00:00Z"}
        for day, (rid, text) in enumerate(texts.items(), start=1)
    ]
    reviews.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    ingested = runner.invoke(app, ["ingest", "reviews", str(reviews), "--data-dir", str(data)])
    assert ingested.exit_code == 0, ingested.output
    assert "sentiment: 2 reviews" in ingested.output  # the blank text is rejected by ingest itself

    analyzed = runner.invoke(app, ["reviews", "analyze", "--json", "--data-dir", str(data)])
    assert analyzed.exit_code == 0, analyzed.output
    assert json.loads(analyzed.output)["total"] == 0  # ingest scored them already
    with Store.open(Settings(data_dir=data).database_url) as store:
        stored = store.review_sentiment.frame().set_index("review_id")
    assert stored.loc["a", "polarity"] == "positive" and stored.loc["b", "polarity"] == "negative"

    one = runner.invoke(app, ["reviews", "sentiment", "太差了，不推荐", "", "--json", "--data-dir", str(data)])
    assert one.exit_code == 0, one.output
    answers = json.loads(one.output)
    assert answers[0]["polarity"] == "negative" and answers[1]["skipped"] == "empty"

    # A model path that holds no model: a clear message and exit status 1, no traceback.
    missing = tmp_path / "no-model"
    broken = runner.invoke(
        app,
        ["reviews", "sentiment", "good", "--data-dir", str(data)],
        env={"SHOPLM_SENTIMENT__MODEL_PATH": str(missing)},
    )
    assert broken.exit_code == 1 and "not a saved shoplm model" in broken.output
    assert "Traceback" not in broken.output


def test_bad_input_on_the_command_line_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reviews", "sentiment", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and "Missing argument" in result.output
