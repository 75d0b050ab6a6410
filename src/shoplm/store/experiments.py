"""A/B experiments: their rows, and the exposure and outcome events a report reads.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.experiments.insert({"experiment_id": "e1", "name": "home test", "scene": "home",
    ...     "arms": "[]", "metric": "ctr", "status": "running", "created_ms": 1, "start_ms": 1, "stop_ms": None})
    >>> store.experiments.stop("e1", stop_ms=5), store.experiments.stop("e1", stop_ms=6)
    (True, False)
    >>> store.experiments.get("e1")["stop_ms"]
    5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import and_, select

from shoplm.store.schema import events as events_table
from shoplm.store.schema import experiments as experiments_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

_BATCH = 900  # user ids per IN (...) lookup: below SQLite's oldest parameter limit


class ExperimentRepository:
    """Rows of ``experiments`` and the events of their exposed users."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def insert(self, row: dict[str, Any]) -> None:
        """Store a new experiment (every column of the table)."""
        with self._store.transaction() as conn:
            conn.execute(experiments_table.insert().values(**row))

    def get(self, experiment_id: str) -> dict[str, Any] | None:
        """The experiment's row, or None."""
        c = experiments_table.c
        with self._store.engine.connect() as conn:
            row = conn.execute(select(experiments_table).where(c.experiment_id == experiment_id)).first()
        return dict(row._mapping) if row is not None else None

    def all(self) -> list[dict[str, Any]]:
        """Every experiment, newest first."""
        c = experiments_table.c
        with self._store.engine.connect() as conn:
            rows = conn.execute(select(experiments_table).order_by(c.created_ms.desc(), c.experiment_id)).fetchall()
        return [dict(r._mapping) for r in rows]

    def running(self, scene: str | None = None) -> list[dict[str, Any]]:
        """The running experiments (of one scene when given), oldest first."""
        c = experiments_table.c
        statement = select(experiments_table).where(c.status == "running")
        if scene is not None:
            statement = statement.where(c.scene == scene)
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement.order_by(c.start_ms, c.experiment_id)).fetchall()
        return [dict(r._mapping) for r in rows]

    def stop(self, experiment_id: str, *, stop_ms: int) -> bool:
        """Stop a running experiment; False when it is not running (unknown or stopped already).

        One conditional UPDATE, so two concurrent stops cannot both succeed.
        """
        c = experiments_table.c
        statement = (
            experiments_table.update()
            .where(and_(c.experiment_id == experiment_id, c.status == "running"))
            .values(status="stopped", stop_ms=stop_ms)
        )
        with self._store.transaction() as conn:
            return bool(conn.execute(statement).rowcount)

    def exposures(self, experiment_id: str) -> pd.DataFrame:
        """The experiment's exposure events: ``user_id, scene, ts_ms``, oldest first."""
        c = events_table.c
        statement = (
            select(c.user_id, c.scene, c.ts_ms)
            .where(c.event_type == "exposure", c.scene.like(f"exp:{experiment_id}:%"))
            .order_by(c.ts_ms)
        )
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        return pd.DataFrame.from_records(rows, columns=["user_id", "scene", "ts_ms"])

    def outcomes(
        self, user_ids: Sequence[str], *, event_types: Sequence[str], since_ms: int, until_ms: int | None = None
    ) -> pd.DataFrame:
        """These users' events of ``event_types`` from ``since_ms`` (to ``until_ms``), not bot bursts.

        Returns:
            ``user_id, event_type, ts_ms``.
        """
        c = events_table.c
        found: list[Any] = []
        users = list(dict.fromkeys(user_ids))
        with self._store.engine.connect() as conn:
            for start in range(0, len(users), _BATCH):
                statement = select(c.user_id, c.event_type, c.ts_ms).where(
                    c.user_id.in_(users[start : start + _BATCH]),
                    c.event_type.in_(list(event_types)),
                    c.ts_ms >= since_ms,
                    ~c.suspected_bot,
                )
                if until_ms is not None:
                    statement = statement.where(c.ts_ms <= until_ms)
                found.extend(conn.execute(statement).fetchall())
        return pd.DataFrame.from_records(found, columns=["user_id", "event_type", "ts_ms"])
