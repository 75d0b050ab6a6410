"""What analytics jobs computed, for serving: named JSON reports and per-user scores with reasons.

A job replaces its whole result in one transaction, so a reader sees the old result or the new
one, never a mix; the tables the job read from are not touched.

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.analytics.save_report("segments", {"segments": [{"name": "champions", "size": 3}]})
    >>> store.analytics.report("segments")["body"]["segments"][0]["name"]
    'champions'
    >>> scores = pd.DataFrame({"user_id": ["u1", "u2"], "score": [0.9, 0.2],
    ...                        "reasons": [["no purchase for 120 days"], []], "details": [{}, {}]})
    >>> store.analytics.replace_user_scores("churn", scores)
    2
    >>> store.analytics.user_score("churn", "u1")["reasons"]
    ['no purchase for 120 days']
    >>> [row["user_id"] for row in store.analytics.top_user_scores("churn", limit=1)]
    ['u1']
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, func, insert, select

from shoplm.store.schema import analytics_reports as reports_table
from shoplm.store.schema import user_scores as scores_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

_INSERT_BATCH = 5_000


class AnalyticsRepository:
    """The ``analytics_reports`` and ``user_scores`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reports --------------------------------------------------------------------------
    def save_report(self, name: str, body: dict[str, Any]) -> None:
        """Replace the report ``name`` with ``body`` (JSON-serializable)."""
        row = {"name": name, "body": json.dumps(body, ensure_ascii=False), "computed_ms": int(time.time() * 1000)}
        with self._store.transaction() as conn:
            conn.execute(delete(reports_table).where(reports_table.c.name == name))
            conn.execute(insert(reports_table), [row])

    def report(self, name: str) -> dict[str, Any] | None:
        """``{"name", "body", "computed_ms"}`` of the report, or None if no job wrote it yet."""
        with self._store.engine.connect() as conn:
            row = conn.execute(select(reports_table).where(reports_table.c.name == name)).first()
        if row is None:
            return None
        return {"name": row.name, "body": json.loads(row.body), "computed_ms": int(row.computed_ms)}

    def report_names(self) -> list[str]:
        with self._store.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(reports_table.c.name).order_by(reports_table.c.name))]

    # -- user scores ----------------------------------------------------------------------
    def replace_user_scores(self, kind: str, scores: pd.DataFrame) -> int:
        """Replace every score of ``kind`` with ``scores``; returns the rows written.

        Args:
            kind: what is scored (``"churn"``).
            scores: columns ``user_id``, ``score`` and optionally ``reasons`` (list of str per
                row) and ``details`` (dict per row).
        """
        now = int(time.time() * 1000)
        reasons = scores["reasons"] if "reasons" in scores else pd.Series([[]] * len(scores), index=scores.index)
        details = scores["details"] if "details" in scores else pd.Series([{}] * len(scores), index=scores.index)
        rows = [
            {
                "kind": kind,
                "user_id": str(user),
                "score": float(score),
                "reasons": json.dumps(list(why), ensure_ascii=False),
                "details": json.dumps(dict(more), ensure_ascii=False, default=float),
                "computed_ms": now,
            }
            for user, score, why, more in zip(scores["user_id"], scores["score"], reasons, details, strict=True)
        ]
        with self._store.transaction() as conn:
            conn.execute(delete(scores_table).where(scores_table.c.kind == kind))
            for start in range(0, len(rows), _INSERT_BATCH):
                conn.execute(insert(scores_table), rows[start : start + _INSERT_BATCH])
        return len(rows)

    def user_score(self, kind: str, user_id: str) -> dict[str, Any] | None:
        """The user's score of ``kind`` with its reasons, or None if the user was not scored."""
        statement = select(scores_table).where(scores_table.c.kind == kind, scores_table.c.user_id == user_id)
        with self._store.engine.connect() as conn:
            row = conn.execute(statement).first()
        return None if row is None else _score_dict(row)

    def top_user_scores(self, kind: str, *, limit: int = 20, min_score: float = 0.0) -> list[dict[str, Any]]:
        """The ``limit`` highest scores of ``kind`` at or above ``min_score``, highest first."""
        statement = (
            select(scores_table)
            .where(scores_table.c.kind == kind, scores_table.c.score >= min_score)
            .order_by(scores_table.c.score.desc(), scores_table.c.user_id)
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            return [_score_dict(row) for row in conn.execute(statement)]

    def count_user_scores(self, kind: str, *, min_score: float = 0.0) -> int:
        statement = select(func.count()).where(scores_table.c.kind == kind, scores_table.c.score >= min_score)
        with self._store.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())


def _score_dict(row: Any) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "score": float(row.score),
        "reasons": json.loads(row.reasons),
        "details": json.loads(row.details),
        "computed_ms": int(row.computed_ms),
    }
