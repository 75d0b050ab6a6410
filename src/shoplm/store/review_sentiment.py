"""Every stored review's sentiment (``review_sentiment``): polarity, P(positive), a 1-5 rating estimate.

Written by :func:`shoplm.app.reviews.score_reviews` after ingest; read by the sentiment routes,
the dashboard and the opinion monitoring. A row whose ``skipped`` is not empty (``"empty"``,
``"unsupported_language"``) has no polarity: the review was looked at and deliberately not scored.

The text hash (SHA-256 of the review text as stored) is the cache key: a new review whose text
another review already has reuses that review's score when the model version is the same.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> row = {"review_id": "r1", "text_hash": "ab", "polarity": "positive", "p_positive": 0.9,
    ...        "rating_estimate": 4.6, "skipped": "", "model_version": "m1"}
    >>> store.review_sentiment.upsert([row])
    1
    >>> store.review_sentiment.by_text_hash(["ab"], "m1")["ab"]["polarity"]
    'positive'
    >>> store.review_sentiment.scored_ids("m1"), store.review_sentiment.scored_ids("m2")
    ({'r1'}, set())
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, func, insert, select

from shoplm.store.schema import items as items_table
from shoplm.store.schema import review_sentiment as sentiment_table
from shoplm.store.schema import reviews as reviews_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

__all__ = ["COLUMNS", "ReviewSentimentRepository", "text_hash"]

#: the columns of one stored score
COLUMNS = (
    "review_id",
    "text_hash",
    "polarity",
    "p_positive",
    "rating_estimate",
    "skipped",
    "model_version",
    "scored_ms",
)
#: the columns :meth:`ReviewSentimentRepository.frame` returns (the score joined with its review)
FRAME_COLUMNS = ("review_id", "item_id", "ts_ms", "rating", "language", *COLUMNS[1:])
_BATCH = 500


def text_hash(text: str) -> str:
    """The cache key of a review text: SHA-256 hex of its UTF-8 bytes.

    Example:
        >>> text_hash("好")[:12]
        'f867f3417859'
    """
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


class ReviewSentimentRepository:
    """The ``review_sentiment`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store scores, replacing earlier ones of the same reviews; returns the rows written.

        Args:
            rows: dicts with the keys of :data:`COLUMNS` (``scored_ms`` defaults to now,
                ``skipped`` to ``""``).

        Returns:
            The number of rows written.
        """
        now = int(time.time() * 1000)
        records = [
            {
                "review_id": str(row["review_id"]),
                "text_hash": str(row["text_hash"]),
                "polarity": row.get("polarity"),
                "p_positive": None if row.get("p_positive") is None else float(row["p_positive"]),
                "rating_estimate": None if row.get("rating_estimate") is None else float(row["rating_estimate"]),
                "skipped": row.get("skipped") or "",
                "model_version": str(row["model_version"]),
                "scored_ms": int(row.get("scored_ms") or now),
            }
            for row in rows
        ]
        with self._store.transaction() as conn:
            for start in range(0, len(records), _BATCH):
                chunk = records[start : start + _BATCH]
                ids = [r["review_id"] for r in chunk]
                conn.execute(delete(sentiment_table).where(sentiment_table.c.review_id.in_(ids)))
                conn.execute(insert(sentiment_table), chunk)
        return len(records)

    def by_text_hash(self, hashes: Sequence[str], model_version: str) -> dict[str, dict[str, Any]]:
        """Stored scores of these text hashes by ``model_version``: hash -> one score (any review's).

        Args:
            hashes: text hashes (see :func:`text_hash`).
            model_version: only scores of this model count.

        Returns:
            ``{hash: {"polarity", "p_positive", "rating_estimate", "skipped"}}`` for the hashes found.
        """
        c = sentiment_table.c
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(hashes))
        with self._store.engine.connect() as conn:
            for start in range(0, len(unique), _BATCH):
                statement = select(c.text_hash, c.polarity, c.p_positive, c.rating_estimate, c.skipped).where(
                    c.text_hash.in_(unique[start : start + _BATCH]), c.model_version == model_version
                )
                for row in conn.execute(statement):
                    found[row.text_hash] = {
                        "polarity": row.polarity,
                        "p_positive": row.p_positive,
                        "rating_estimate": row.rating_estimate,
                        "skipped": row.skipped,
                    }
        return found

    def scored_ids(self, model_version: str | None = None) -> set[str]:
        """Ids of the reviews with a stored score (by ``model_version``, or any)."""
        statement = select(sentiment_table.c.review_id)
        if model_version is not None:
            statement = statement.where(sentiment_table.c.model_version == model_version)
        with self._store.engine.connect() as conn:
            return {str(v) for v in conn.execute(statement).scalars()}

    def unscored_reviews(self, model_version: str | None = None, *, rescore: bool = False) -> pd.DataFrame:
        """Reviews (``review_id``, ``item_id``, ``text``) without a score (of ``model_version``, if given).

        Args:
            model_version: a score by another model version counts as missing; None: any score counts.
            rescore: every review, scored or not.
        """
        r, s = reviews_table.c, sentiment_table.c
        statement = select(r.review_id, r.item_id, r.text).order_by(r.review_id)
        if not rescore:
            scored = select(s.review_id)
            if model_version is not None:
                scored = scored.where(s.model_version == model_version)
            statement = statement.where(r.review_id.not_in(scored))
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        return pd.DataFrame.from_records(rows, columns=["review_id", "item_id", "text"])

    def frame(
        self,
        *,
        item_ids: Sequence[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        include_skipped: bool = False,
    ) -> pd.DataFrame:
        """Scores joined with their reviews, oldest first: the columns of :data:`FRAME_COLUMNS`.

        Args:
            item_ids: only reviews of these items.
            since_ms, until_ms: only reviews written in ``[since_ms, until_ms)`` (review ``ts_ms``).
            include_skipped: also the skipped reviews (``polarity`` None).

        Returns:
            One row per scored review; ``ts_ms`` is the review's time, ``rating`` the customer's
            own stars (None if not given), ``rating_estimate`` the model's.

        Example:
            >>> store.review_sentiment.frame(item_ids=["i1"]).columns[:3].tolist()  # doctest: +SKIP
            ['review_id', 'item_id', 'ts_ms']
        """
        r, s = reviews_table.c, sentiment_table.c
        columns = [r.review_id, r.item_id, r.ts_ms, r.rating, r.language, *[s[name] for name in COLUMNS[1:]]]
        statement = select(*columns).join_from(reviews_table, sentiment_table, r.review_id == s.review_id)
        if item_ids is not None:
            statement = statement.where(r.item_id.in_([str(i) for i in item_ids]))
        if since_ms is not None:
            statement = statement.where(r.ts_ms >= int(since_ms))
        if until_ms is not None:
            statement = statement.where(r.ts_ms < int(until_ms))
        if not include_skipped:
            statement = statement.where(s.skipped == "")
        statement = statement.order_by(r.ts_ms, r.review_id)
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=list(FRAME_COLUMNS))
        frame["ts_ms"] = frame["ts_ms"].astype("int64")
        return frame

    def item_summary(self, item_id: str) -> dict[str, Any]:
        """One item's scored reviews: counts per polarity, skipped count, mean rating estimate.

        Returns:
            ``{"item_id", "reviews", "scored", "skipped", "counts": {polarity: n},
            "mean_rating_estimate", "mean_p_positive"}`` (means None when nothing is scored).
        """
        r, s = reviews_table.c, sentiment_table.c
        statement = (
            select(s.polarity, s.skipped, func.count(), func.avg(s.rating_estimate), func.avg(s.p_positive))
            .join_from(reviews_table, sentiment_table, r.review_id == s.review_id)
            .where(r.item_id == str(item_id))
            .group_by(s.polarity, s.skipped)
        )
        counts = {"positive": 0, "neutral": 0, "negative": 0}
        skipped = 0
        rating_sum = p_sum = 0.0
        with self._store.engine.connect() as conn:
            total = int(
                conn.execute(select(func.count()).where(r.item_id == str(item_id))).scalar_one()  # all its reviews
            )
            for polarity, reason, n, mean_rating, mean_p in conn.execute(statement):
                if reason or polarity is None:
                    skipped += int(n)
                    continue
                counts[polarity] = counts.get(polarity, 0) + int(n)
                rating_sum += float(mean_rating or 0.0) * int(n)
                p_sum += float(mean_p or 0.0) * int(n)
        scored = sum(counts.values())
        return {
            "item_id": str(item_id),
            "reviews": total,
            "scored": scored,
            "skipped": skipped,
            "counts": counts,
            "mean_rating_estimate": round(rating_sum / scored, 3) if scored else None,
            "mean_p_positive": round(p_sum / scored, 4) if scored else None,
        }

    def counts_by_category(self, *, level: int = 1, limit: int = 12) -> list[dict[str, Any]]:
        """Scored reviews per item category and polarity, the categories with most reviews first.

        Args:
            level: how many levels of the ``A > B > C`` category path name a group (1: top level).
            limit: at most this many categories.

        Returns:
            ``[{"category", "positive", "neutral", "negative", "total"}]``; reviews of items not in
            the catalog count under ``"(unknown)"``, of items without a category under ``"(none)"``.
        """
        r, s, i = reviews_table.c, sentiment_table.c, items_table.c
        statement = (
            select(i.category, s.polarity, func.count())
            .select_from(
                reviews_table.join(sentiment_table, r.review_id == s.review_id).outerjoin(
                    items_table, i.item_id == r.item_id
                )
            )
            .where(s.skipped == "", s.polarity.is_not(None))
            .group_by(i.category, s.polarity)
        )
        groups: dict[str, dict[str, Any]] = {}
        with self._store.engine.connect() as conn:
            for category, polarity, n in conn.execute(statement):
                if category is None:
                    name = "(unknown)"
                else:
                    name = " > ".join(p.strip() for p in str(category).split(">")[: max(level, 1)]) or "(none)"
                group = groups.setdefault(
                    name, {"category": name, "positive": 0, "neutral": 0, "negative": 0, "total": 0}
                )
                group[polarity] = group.get(polarity, 0) + int(n)
                group["total"] += int(n)
        return sorted(groups.values(), key=lambda g: (-g["total"], g["category"]))[:limit]

    def count(self) -> int:
        """How many reviews have a stored score (skipped ones included)."""
        with self._store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(sentiment_table)).scalar_one())

    def delete_orphans(self) -> int:
        """Remove scores of reviews no longer stored (erased users' reviews); returns the rows removed."""
        s, r = sentiment_table.c, reviews_table.c
        with self._store.transaction() as conn:
            result = conn.execute(delete(sentiment_table).where(s.review_id.not_in(select(r.review_id))))
            return int(result.rowcount or 0)
