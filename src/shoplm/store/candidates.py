"""Every user's precomputed home candidate list (``candidate_lists``), written by batch scoring.

The batch job (:func:`shoplm.app.batch.precompute_candidates`) replaces the whole set in one
transaction; serving reads one row by primary key and uses it only when it was scored by the
live model version from the history the user still has (``basis``).

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> rows = [{"user_id": "u1", "basis": "h1", "items": [{"item_id": "i9", "score": 0.5, "reason": "popular"}]}]
    >>> store.candidates.replace("v0001", rows)
    1
    >>> store.candidates.get("u1")["items"][0]["item_id"], store.candidates.count("v0001")
    ('i9', 1)
    >>> store.candidates.has_version("v0001"), store.candidates.has_version("v0002")
    (True, False)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select

from shoplm.store.schema import candidate_lists as lists_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

_INSERT_BATCH = 5_000


class CandidateRepository:
    """The ``candidate_lists`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def replace(self, version: str, rows: Iterable[dict[str, Any]]) -> int:
        """Replace every stored list with ``rows`` scored by model ``version``; returns the rows written.

        Args:
            version: the model version directory's name.
            rows: ``{"user_id", "basis", "items"}`` each; ``items`` a JSON-serializable list.
        """
        now = int(time.time() * 1000)
        records = [
            {
                "user_id": str(row["user_id"]),
                "version": version,
                "basis": str(row["basis"]),
                "items": json.dumps(row["items"], ensure_ascii=False),
                "computed_ms": now,
            }
            for row in rows
        ]
        with self._store.transaction() as conn:
            conn.execute(delete(lists_table))
            for start in range(0, len(records), _INSERT_BATCH):
                conn.execute(insert(lists_table), records[start : start + _INSERT_BATCH])
        return len(records)

    def get(self, user_id: str) -> dict[str, Any] | None:
        """``{"user_id", "version", "basis", "items", "computed_ms"}`` of the user, or None."""
        with self._store.engine.connect() as conn:
            row = conn.execute(select(lists_table).where(lists_table.c.user_id == user_id)).first()
        if row is None:
            return None
        return {
            "user_id": row.user_id,
            "version": row.version,
            "basis": row.basis,
            "items": json.loads(row.items),
            "computed_ms": int(row.computed_ms),
        }

    def has_version(self, version: str) -> bool:
        """Whether any list scored by model ``version`` is stored (a job replaces all lists at once)."""
        statement = select(lists_table.c.user_id).where(lists_table.c.version == version).limit(1)
        with self._store.engine.connect() as conn:
            return conn.execute(statement).first() is not None

    def count(self, version: str | None = None) -> int:
        """How many lists are stored (of one model version, or all)."""
        statement = select(func.count()).select_from(lists_table)
        if version is not None:
            statement = statement.where(lists_table.c.version == version)
        with self._store.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def delete_user(self, user_id: str) -> int:
        """Remove the user's list (the right to be forgotten); returns the rows removed."""
        with self._store.transaction() as conn:
            return int(conn.execute(delete(lists_table).where(lists_table.c.user_id == user_id)).rowcount or 0)
