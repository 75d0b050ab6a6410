"""The item catalog.

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> _ = store.upsert("items", pd.DataFrame({"item_id": ["b", "a"], "title": ["B", "A"], "description": "",
    ...     "category": "", "brand": "", "currency": "", "language": "", "attributes": "{}",
    ...     "content_hash": ["h1", "h2"], "updated_ms": [5, 9]}))
    >>> store.items.catalog(["item_id"])["item_id"].tolist()
    ['a', 'b']
    >>> store.items.changed_since(6, ["item_id"])["item_id"].tolist()
    ['a']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from shoplm.store.schema import items as items_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: Lookups by id go in batches below SQLite's oldest bound-parameter limit (999).
_BATCH = 900


class ItemRepository:
    """Reads of the ``items`` table (writes go through ingest, which hashes and upserts)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def catalog(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every item, ordered by id (all columns unless ``columns`` are named)."""
        return self._store.frame("items", list(columns) if columns else None, order_by=["item_id"])

    def changed_since(self, ms: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Items written at or after ``ms`` (epoch milliseconds)."""
        return self._store.frame("items", list(columns) if columns else None, where=items_table.c.updated_ms >= ms)

    def by_ids(self, item_ids: Sequence[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored items among ``item_ids`` (unknown ids are left out), ordered by id."""
        ids = sorted(set(map(str, item_ids)))
        parts = [
            self._store.frame(
                "items",
                list(columns) if columns else None,
                where=items_table.c.item_id.in_(ids[start : start + _BATCH]),
                order_by=["item_id"],
            )
            for start in range(0, len(ids), _BATCH)
        ]
        if not parts:
            return self._store.frame("items", list(columns) if columns else None, limit=0)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
