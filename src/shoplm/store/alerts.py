"""Alerts, each stored once, and their delivery state.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> alert = {"alert_id": "fraud:O1", "kind": "fraud", "subject": "O1", "score": 0.97,
    ...          "title": "order O1 looks fraudulent", "body": {"rules": ["new account"]}}
    >>> store.alerts.add([alert]), store.alerts.add([alert])   # found again: stored once
    (['fraud:O1'], [])
    >>> [a["alert_id"] for a in store.alerts.pending(max_attempts=5)]
    ['fraud:O1']
    >>> store.alerts.mark_delivered("fraud:O1"); store.alerts.pending(max_attempts=5)
    []
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from shoplm.store.schema import alerts as alerts_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

_LOOKUP_BATCH = 900


def _now_ms() -> int:
    return int(time.time() * 1000)


class AlertRepository:
    """The ``alerts`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, alerts: Sequence[dict[str, Any]]) -> list[str]:
        """Store the alerts not stored before; returns the ids that are new.

        Args:
            alerts: dicts with alert_id, kind, subject, score, title and body (a JSON-ready dict).
        """
        if not alerts:
            return []
        ids = [str(a["alert_id"]) for a in alerts]
        with self._store.transaction() as conn:
            known: set[str] = set()
            for start in range(0, len(ids), _LOOKUP_BATCH):
                chunk = ids[start : start + _LOOKUP_BATCH]
                known.update(
                    conn.execute(select(alerts_table.c.alert_id).where(alerts_table.c.alert_id.in_(chunk))).scalars()
                )
            now = _now_ms()
            fresh: dict[str, dict[str, Any]] = {}
            for alert in alerts:
                alert_id = str(alert["alert_id"])
                if alert_id in known or alert_id in fresh:
                    continue
                fresh[alert_id] = {
                    "alert_id": alert_id,
                    "kind": str(alert["kind"]),
                    "subject": str(alert["subject"]),
                    "score": float(alert["score"]),
                    "title": str(alert["title"]),
                    "body": json.dumps(alert.get("body", {}), ensure_ascii=False, default=str),
                    "created_ms": int(alert.get("created_ms", now)),
                    "delivered_ms": None,
                    "attempts": 0,
                    "last_error": "",
                }
            if fresh:
                conn.execute(insert(alerts_table), list(fresh.values()))
        return list(fresh)

    def recent(self, kind: str | None = None, *, limit: int = 50, since_ms: int = 0) -> list[dict[str, Any]]:
        """The newest alerts (of ``kind``, if given), newest first."""
        statement = select(alerts_table).where(alerts_table.c.created_ms >= since_ms)
        if kind is not None:
            statement = statement.where(alerts_table.c.kind == kind)
        statement = statement.order_by(alerts_table.c.created_ms.desc(), alerts_table.c.score.desc()).limit(limit)
        with self._store.engine.connect() as conn:
            return [_alert_dict(row) for row in conn.execute(statement)]

    def count(self, kind: str | None = None) -> int:
        statement = select(func.count()).select_from(alerts_table)
        if kind is not None:
            statement = statement.where(alerts_table.c.kind == kind)
        with self._store.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def pending(self, *, max_attempts: int, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts not yet delivered with attempts left, oldest first."""
        statement = (
            select(alerts_table)
            .where(alerts_table.c.delivered_ms.is_(None), alerts_table.c.attempts < max_attempts)
            .order_by(alerts_table.c.created_ms, alerts_table.c.alert_id)
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            return [_alert_dict(row) for row in conn.execute(statement)]

    def mark_delivered(self, alert_id: str) -> None:
        self._update(alert_id, delivered_ms=_now_ms(), attempts=alerts_table.c.attempts + 1, last_error="")

    def mark_failed(self, alert_id: str, error: str) -> None:
        self._update(alert_id, attempts=alerts_table.c.attempts + 1, last_error=error[:500])

    def _update(self, alert_id: str, **values: Any) -> None:
        with self._store.transaction() as conn:
            conn.execute(update(alerts_table).where(alerts_table.c.alert_id == alert_id).values(**values))


def _alert_dict(row: Any) -> dict[str, Any]:
    return {
        "alert_id": row.alert_id,
        "kind": row.kind,
        "subject": row.subject,
        "score": float(row.score),
        "title": row.title,
        "body": json.loads(row.body),
        "created_ms": int(row.created_ms),
        "delivered_ms": None if row.delivered_ms is None else int(row.delivered_ms),
        "attempts": int(row.attempts),
        "last_error": row.last_error,
    }
