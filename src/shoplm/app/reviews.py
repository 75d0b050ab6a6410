"""Review sentiment over the store: score what is not scored yet, reuse scores of identical texts.

:func:`score_reviews` runs after ``shoplm ingest reviews`` / ``shoplm import`` (when
``settings.sentiment.score_on_ingest``) and as ``shoplm reviews analyze``. A review is scored by
the model once per model version: its text's SHA-256 is looked up first, so a text another
review already has (re-posted reviews, "好评" x 1000) costs a lookup, not an encoder call.

:func:`sentiment_model` loads the configured model once per process (the HTTP routes call it
per request and get the same object back).

Example:
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> score_reviews(store, Settings()).total  # doctest: +SKIP
    0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoplm.config import Settings
from shoplm.insight.sentiment import ReviewSentiment, SentimentResult, default_sentiment_path
from shoplm.store import Store
from shoplm.store.review_sentiment import text_hash

__all__ = ["ScoreResult", "after_ingest", "analyze_texts", "score_reviews", "sentiment_model"]

_MODELS: dict[tuple[str, str, int | None], ReviewSentiment] = {}
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring pass did: ``total`` reviews looked at = ``scored`` + ``reused`` + ``skipped``."""

    total: int
    scored: int
    reused: int
    skipped: int
    model_version: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.total:,} reviews: {self.scored:,} scored by the model, {self.reused:,} reused from identical "
            f"texts, {self.skipped:,} skipped (empty or not Chinese/English) [{self.model_version}]"
        )


def sentiment_model(settings: Settings) -> ReviewSentiment:
    """The configured review-sentiment model, loaded once per process and reused.

    ``settings.sentiment.model_path`` names a model directory; empty means the one shipped in the
    package. Embeddings of new texts are cached under ``settings.cache_dir / "embeddings"``.

    Raises:
        ModelFileError: the directory holds no saved model.
    """
    path = Path(settings.sentiment.model_path or default_sentiment_path())
    key = (str(path.resolve()), str(settings.cache_dir), settings.encoder.threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = ReviewSentiment.load(path).use(settings)
            _MODELS[key] = model
    return model


def analyze_texts(settings: Settings, texts: list[str]) -> list[SentimentResult]:
    """Sentiment of texts that are not stored (the CLI's one-text command, the HTTP route).

    Example:
        >>> analyze_texts(Settings(), ["质量很好，物流也快"])[0].polarity  # doctest: +SKIP
        'positive'
    """
    return sentiment_model(settings).predict(texts)


def score_reviews(
    store: Store,
    settings: Settings,
    *,
    rescore: bool = False,
    model: ReviewSentiment | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """Score every stored review the model has not scored yet, and store the results.

    Args:
        store: the shop's store.
        settings: which model, the batch size, the embedding cache.
        rescore: score every review again (nothing is reused), e.g. after changing the model.
        model: a model to use instead of the configured one (tests, benchmarks).
        progress: called with ``(done, total)`` after each batch.

    Returns:
        A :class:`ScoreResult`.
    """
    started = time.perf_counter()
    model = model or sentiment_model(settings)
    version = model.model_version
    pending = store.review_sentiment.unscored_reviews(version, rescore=rescore)
    total, reused, skipped = len(pending), 0, 0
    batch = settings.sentiment.batch_size
    if progress is not None:
        progress(0, total)
    for start in range(0, total, batch):
        chunk = pending.iloc[start : start + batch]
        texts = chunk["text"].fillna("").astype(str).tolist()
        hashes = [text_hash(t) for t in texts]
        known = {} if rescore else store.review_sentiment.by_text_hash(hashes, version)
        new_texts = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        fresh = dict(zip(new_texts, model.predict(list(new_texts.values())), strict=True))
        rows = []
        for review_id, digest in zip(chunk["review_id"], hashes, strict=True):
            if digest in fresh:
                result = fresh[digest]
                row = {
                    "polarity": result.polarity,
                    "p_positive": result.p_positive,
                    "rating_estimate": result.rating,
                    "skipped": result.skipped or "",
                }
            else:
                row = dict(known[digest])
                reused += 1
            skipped += bool(row["skipped"])
            rows.append({"review_id": review_id, "text_hash": digest, "model_version": version, **row})
        store.review_sentiment.upsert(rows)
        if progress is not None:
            progress(min(start + batch, total), total)
    scored = total - reused - skipped  # copies of one new text within a batch count as scored
    store.review_sentiment.delete_orphans()
    return ScoreResult(total, scored, reused, skipped, version, round(time.perf_counter() - started, 3))


def after_ingest(
    store: Store, settings: Settings, kinds: Iterable[str], progress: Callable[[int, int], None] | None = None
) -> ScoreResult | None:
    """Score new reviews when one of ``kinds`` (what was just ingested) is ``"reviews"`` and scoring on ingest is on.

    Returns:
        The :class:`ScoreResult`, or None when nothing was due.
    """
    if "reviews" not in set(kinds) or not settings.sentiment.score_on_ingest:
        return None
    return score_reviews(store, settings, progress=progress)
