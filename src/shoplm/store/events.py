"""Behaviour events: the training log, a user's live history, the newest events.

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> _ = store.upsert("events", pd.DataFrame({"event_id": ["e1", "e2"], "user_id": ["u1", "u1"],
    ...     "item_id": ["a", "b"], "event_type": ["view", "purchase"], "ts_ms": [1, 2], "scene": "", "query": "",
    ...     "session_id": "", "suspected_bot": False}))
    >>> store.events.history("u1", limit=10)
    [('a', 'view'), ('b', 'purchase')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, select

from shoplm.store.schema import events as events_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: The columns training reads by default.
TRAINING_COLUMNS = ("user_id", "item_id", "event_type", "ts_ms")


class EventRepository:
    """Reads of the ``events`` table (writes go through :meth:`Store.upsert`, idempotent by id)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Written once in the driver's parameter style: a user's live history is read on every
        # recommendation request (boolean columns are integers in SQLite: NOT works in both).
        marker = "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
        self._history_sql = (
            f"SELECT item_id, event_type FROM events WHERE user_id = {marker} AND item_id IS NOT NULL "
            f"AND NOT suspected_bot ORDER BY ts_ms DESC LIMIT {marker}"
        )

    def frame(
        self, columns: tuple[str, ...] | list[str] = (*TRAINING_COLUMNS, "session_id"), *, with_bots: bool = True
    ) -> pd.DataFrame:
        """Events in time order.

        Args:
            columns: the columns to read.
            with_bots: False leaves out events flagged as bot-like bursts at ingest.

        Returns:
            A DataFrame of ``columns``, oldest event first.
        """
        names = list(columns)
        read = names if with_bots or "suspected_bot" in names else [*names, "suspected_bot"]
        frame = self._store.frame("events", read, order_by=["ts_ms"])
        if not with_bots:
            frame = frame[~frame["suspected_bot"].astype(bool)]
        return frame[names].reset_index(drop=True)

    def history(self, user_id: str, *, limit: int) -> list[tuple[str, str]]:
        """The user's newest ``limit`` item events (not bot bursts), oldest first, as (item id, type)."""
        # Every recommendation request reads this, on the server's event loop: one statement on a
        # pooled driver connection costs 35 us where SQLAlchemy's execute path costs 120-190 us.
        connection = self._store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(self._history_sql, (user_id, limit))
            rows = cursor.fetchall()
            cursor.close()
        finally:
            connection.close()  # back to the pool
        return [(str(item), str(kind)) for item, kind in reversed(rows)]

    def insert_batches(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[set[str]]:
        """Insert several requests' event rows in one transaction; returns the ids each one stored.

        Rows whose ``event_id`` is stored already (idempotent resends) are skipped, and a batch
        only gets the ids it stored itself: when two batches carry one id, the first one wins.
        The ids are known once the transaction has committed.

        Args:
            batches: store rows (every column of ``events``), one sequence per request.

        Returns:
            One set of stored event ids per batch, in order.
        """
        columns = [c.name for c in events_table.columns]
        stored: list[set[str]] = []
        with self._store.transaction() as conn:
            quote = conn.dialect.identifier_preparer.quote
            marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            one = "(" + ", ".join([marker] * len(columns)) + ")"
            head = f"INSERT INTO events ({', '.join(quote(c) for c in columns)}) VALUES "
            for rows in batches:
                if not rows:
                    stored.append(set())
                    continue
                # One statement a batch (few rows: the API's); RETURNING names the rows it stored.
                sql = head + ", ".join([one] * len(rows)) + " ON CONFLICT DO NOTHING RETURNING event_id"
                params = tuple(row[c] for row in rows for c in columns)
                stored.append({str(r[0]) for r in conn.exec_driver_sql(sql, params)})
        return stored

    def newest(self, *, limit: int) -> list[dict[str, object]]:
        """The newest ``limit`` events of all users, newest first (for a live feed)."""
        c = events_table.c
        statement = (
            select(c.event_id, c.user_id, c.item_id, c.event_type, c.query, c.ts_ms)
            .order_by(c.ts_ms.desc())
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def delete_older_than(self, cutoff_ms: int, *, batch: int = 900) -> int:
        """Delete events with ``ts_ms`` before ``cutoff_ms`` (retention); returns how many.

        Deletes ``batch`` events per transaction, so writers (the API's event ingest) wait for
        one short transaction at a time, never for the whole sweep.
        """
        c = events_table.c
        deleted = 0
        while True:
            with self._store.transaction() as conn:
                ids = conn.execute(select(c.event_id).where(c.ts_ms < cutoff_ms).limit(batch)).scalars().all()
                if not ids:
                    return deleted
                deleted += conn.execute(delete(events_table).where(c.event_id.in_(ids))).rowcount

    def recent_users(self, *, window: int, limit: int) -> list[tuple[str, int, int]]:
        """Users with the newest events: (user id, events, newest ts) among the newest ``window`` events."""
        c = events_table.c
        statement = select(c.user_id, c.ts_ms).order_by(c.ts_ms.desc()).limit(window)
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        if not rows:
            return []
        frame = pd.DataFrame(rows, columns=["user_id", "ts_ms"])
        grouped = frame.groupby("user_id")["ts_ms"].agg(["count", "max"]).sort_values("max", ascending=False)
        return [(str(user), int(row["count"]), int(row["max"])) for user, row in grouped.head(limit).iterrows()]
