"""Impression logs (``impressions``): which items each request showed, and what the user did.

Written by ingest (kind ``impressions``, append-only by request and position); read in time
order for CTR training and aggregated for the dashboard.

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> rows = pd.DataFrame({"request_id": ["q1", "q1"], "position": [0, 1], "user_id": ["u1", "u1"],
    ...     "item_id": ["a", "b"], "ts_ms": [5, 5], "scene": ["home", "home"], "clicked": [True, False],
    ...     "added_to_cart": [False, False], "creative": [0, 2]})
    >>> store.upsert("impressions", rows).inserted
    2
    >>> store.impressions.count(), store.impressions.by_position().to_dict("records")[0]
    (2, {'position': 0, 'shown': 1, 'clicks': 1})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Integer, cast, func, select

from shoplm.store.schema import impressions as impressions_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

COLUMNS = ("request_id", "position", "user_id", "item_id", "ts_ms", "scene", "clicked", "added_to_cart", "creative")


class ImpressionRepository:
    """Reads of the ``impressions`` table (writes go through :meth:`Store.upsert`)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def count(self) -> int:
        """Stored impressions."""
        return self._store.count("impressions")

    def frame(self, *, since_ms: int | None = None, until_ms: int | None = None) -> pd.DataFrame:
        """Impressions in time order (then request, position), optionally in ``[since_ms, until_ms)``.

        Returns:
            A DataFrame of :data:`COLUMNS`; ``clicked`` and ``added_to_cart`` as bool.
        """
        c = impressions_table.c
        conditions = []
        if since_ms is not None:
            conditions.append(c.ts_ms >= since_ms)
        if until_ms is not None:
            conditions.append(c.ts_ms < until_ms)
        where = conditions[0] if len(conditions) == 1 else (conditions[0] & conditions[1]) if conditions else None
        frame = self._store.frame("impressions", COLUMNS, where=where, order_by=["ts_ms", "request_id", "position"])
        for column in ("clicked", "added_to_cart"):
            frame[column] = frame[column].astype(bool)
        frame["position"] = frame["position"].astype("int64")
        return frame

    def by_position(self) -> pd.DataFrame:
        """Impressions and clicks per position: columns ``position``, ``shown``, ``clicks``."""
        c = impressions_table.c
        statement = (
            select(c.position, func.count().label("shown"), func.sum(cast(c.clicked, Integer)).label("clicks"))
            .group_by(c.position)
            .order_by(c.position)
        )
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=["position", "shown", "clicks"])
        return frame.astype({"position": "int64", "shown": "int64", "clicks": "int64"})

    def time_range(self) -> tuple[int, int] | None:
        """(first, last) impression time in ms, or None when there are none."""
        c = impressions_table.c
        with self._store.engine.connect() as conn:
            low, high = conn.execute(select(func.min(c.ts_ms), func.max(c.ts_ms))).one()
        return None if low is None else (int(low), int(high))
