"""Review sentiment: the estimator contract, bad input's defined results, the shipped model, the rating mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.insight.sentiment import (
    MAX_CHARS,
    ReviewSentiment,
    default_sentiment_path,
    detect_language,
    load_default_sentiment,
    prepare_review,
)
from tests.estimator_contract import EstimatorContract
from tests.lm.fakes import HashEncoder

# A toy polarity task on the hash encoder's random vectors: the n-grams carry the signal.
TOY_TEXTS = [
    "good quality", "great value", "很好", "非常好", "love it", "太棒了",
    "bad quality", "awful value", "很差", "非常差", "hate it", "太烂了",
]  # fmt: skip
TOY_LABELS = [1] * 6 + [0] * 6


def _toy_model(**params: object) -> ReviewSentiment:
    return ReviewSentiment(ngram_features=200, l2=1e-3, **params).use(encoder=HashEncoder(dim=16))


class TestReviewSentimentContract(EstimatorContract):
    def make_estimator(self) -> ReviewSentiment:
        return _toy_model()

    def fit_estimator(self, estimator: ReviewSentiment) -> ReviewSentiment:  # type: ignore[override]
        return estimator.fit(TOY_TEXTS * 2, TOY_LABELS * 2)

    def probe(self, estimator: ReviewSentiment) -> np.ndarray:  # type: ignore[override]
        estimator.use(encoder=HashEncoder(dim=16))  # a loaded model would otherwise open e5
        results = estimator.predict(["good value", "很差", "great"])
        return np.array([[r.p_positive, r.rating] for r in results])


# -- language detection and preparation (no model) ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("质量很好，物流也快", "zh"),
        ("iPhone 充电很快", "zh"),
        ("Works great, fast shipping", "en"),
        ("ok", "en"),
        ("とても良い商品です", "other"),
        ("배송이 빨라요", "other"),
        ("Отличный товар", "other"),
        ("Très bon produit, je le recommande", "other"),
        ("Sehr gut, das Produkt ist super", "other"),
        ("El producto es muy bueno", "other"),
        ("👍👍👍 100%", None),
    ],
)
def test_language_detection(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_preparation_strips_html_keeps_emoji_and_cuts_long_texts() -> None:
    html = prepare_review("<div><p>Great <b>value</b> &amp; fast 😍</p><script>alert(1)</script></div>")
    assert html.text == "Great value & fast 😍" and html.html_stripped and html.skipped is None
    long = prepare_review("很好" * 3000)
    assert long.truncated and len(long.text) == MAX_CHARS and long.skipped is None
    for empty in ("", "   \n\t", None, "<p> </p>", "\u200b\ufeff"):
        assert prepare_review(empty).skipped == "empty", repr(empty)


def test_labels_must_be_binary() -> None:
    with pytest.raises(InputError, match="label 1"):
        _toy_model().fit(["good", "meh", "bad"], [1, 3, 0])


def test_a_fitted_rating_mapping_is_monotone_and_within_the_stars() -> None:
    model = _toy_model().fit(TOY_TEXTS * 2, TOY_LABELS * 2)
    assert model.rating_for(0.0) == pytest.approx(1.0) and model.rating_for(1.0) == pytest.approx(5.0)  # 1 + 4p
    rated = TOY_TEXTS * 2
    stars = [5, 4, 5, 4, 5, 5, 1, 2, 1, 2, 1, 2] * 2
    before = model.model_version
    model.fit_ratings(rated, stars)
    assert model.n_rated_ == 24 and model.model_version != before
    grid = model.rating_for(np.linspace(0, 1, 21))
    assert np.all(np.diff(grid) >= 0) and grid.min() >= 1 and grid.max() <= 5
    # Positive toy texts land near their stars (4-5), negative ones near theirs (1-2).
    results = model.predict(["good quality", "很差"])
    assert results[0].rating > 3.5 and results[1].rating < 2.5
    with pytest.raises(InputError, match=r"1\.\.5"):
        model.fit_ratings(["good"] * 10, [7] * 10)


# -- the shipped model (real e5 encoder; a handful of texts) -----------------------------------
@pytest.fixture(scope="module")
def shipped(embedding_cache: Path) -> ReviewSentiment:
    return load_default_sentiment().use(embedding_cache, threads=1)


def test_the_model_ships_in_the_package_small() -> None:
    path = default_sentiment_path()
    assert (path / "meta.json").is_file()
    assert sum(p.stat().st_size for p in path.iterdir()) < 5_000_000


def test_shipped_model_reads_chinese_and_english_reviews(shipped: ReviewSentiment) -> None:
    texts = [
        "质量很好，物流也很快，非常满意",
        "太差了，用了两天就坏了，客服也不理人",
        "Excellent product, works perfectly and arrived early.",
        "Terrible quality, it broke after one day. Do not buy.",
    ]
    results = shipped.predict(texts)
    assert [r.polarity for r in results] == ["positive", "negative", "positive", "negative"]
    assert [r.language for r in results] == ["zh", "zh", "en", "en"]
    assert results[0].p_positive > 0.8 > 0.2 > results[1].p_positive
    assert all(1 <= r.rating <= 5 for r in results) and results[0].rating > results[1].rating


def test_bad_input_gets_a_defined_result_never_an_error(shipped: ReviewSentiment) -> None:
    texts = ["", "   ", None, "Das ist ein sehr gutes Produkt", "<p>Love <b>it</b>!</p> 😍", "好评！" + "很好" * 2000]
    results = shipped.predict(texts)  # type: ignore[arg-type]
    assert [r.skipped for r in results] == ["empty", "empty", "empty", "unsupported_language", None, None]
    assert all(r.polarity is None and r.p_positive is None and r.rating is None for r in results[:4])
    assert results[4].html_stripped and results[4].polarity == "positive"
    assert results[5].truncated and results[5].polarity == "positive"
    with pytest.raises(TypeError, match="list"):
        shipped.predict("one string")  # type: ignore[arg-type]
    assert shipped.predict([]) == []


def test_model_version_survives_a_round_trip(shipped: ReviewSentiment, tmp_path: Path) -> None:
    copy = ReviewSentiment.load(shipped.save(tmp_path / "copy"))
    assert copy.model_version == shipped.model_version and shipped.model_version.startswith("sentiment-")


# -- the ensemble benchmark (real e5 on a few dozen short texts; embeddings cached for the run) --
def test_ensemble_benchmark_reports_members_beside_the_mix(tmp_path: Path, embedding_cache: Path) -> None:
    from shoplm.insight.sentiment_bench import run_sentiment_ensemble_benchmark

    positive = ["很好用", "质量不错", "物流很快", "非常满意", "great phone", "works well", "love it", "fast delivery"]
    negative = ["太差了", "质量很差", "物流太慢", "非常失望", "broke quickly", "a waste", "hate it", "arrived late"]
    train = tmp_path / "train.tsv"
    rows = [f"{label}\t{text}" for texts, label in ((positive, 1), (negative, 0)) for text in texts]
    train.write_text("label\ttext\n" + "\n".join(rows * 2) + "\n")
    test = tmp_path / "test.tsv"
    test.write_text("label\ttext\n1\t很满意，很好用\n0\t质量太差了\n1\tgreat, works well\n0\tbroke, a waste\n")
    out = tmp_path / "report.json"
    report = run_sentiment_ensemble_benchmark(
        train, test, out=out, valid=0.25, members=("fused", "e5", "ngram"), cache_dir=embedding_cache
    )
    assert set(report["members"]) == {"fused", "e5", "ngram"} and report["baseline"] == "fused"
    assert sum(report["weights"].values()) == pytest.approx(1.0)
    assert report["n_train"] == 32 and report["n_test"] == 4
    assert report["ensemble"]["accuracy"] >= 0.75 and report["members"]["fused"]["accuracy"] >= 0.75
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 0
    with pytest.raises(InputError, match="unknown ensemble member"):
        run_sentiment_ensemble_benchmark(train, test, members=("bert",))
