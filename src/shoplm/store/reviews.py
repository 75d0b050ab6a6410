"""Reviews: one by id with its item's title, the newest ones, and the order a review is about.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.reviews.get("R404") is None, store.reviews.newest(limit=5)
    (True, [])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shoplm.store.schema import items as items_table
from shoplm.store.schema import order_lines as lines_table
from shoplm.store.schema import orders as orders_table
from shoplm.store.schema import reviews as reviews_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: The columns of a review as :meth:`ReviewRepository.get` and :meth:`ReviewRepository.newest` return it.
REVIEW_COLUMNS = ("review_id", "item_id", "user_id", "rating", "text", "language", "ts_ms", "item_title")


class ReviewRepository:
    """The ``reviews`` table, read with the reviewed item's title."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _select(self) -> Any:
        r = reviews_table.c
        return select(
            r.review_id, r.item_id, r.user_id, r.rating, r.text, r.language, r.ts_ms, items_table.c.title
        ).select_from(reviews_table.outerjoin(items_table, items_table.c.item_id == r.item_id))

    @staticmethod
    def _row(row: Any) -> dict[str, Any]:
        out = dict(zip(REVIEW_COLUMNS, row, strict=True))
        out["item_title"] = out["item_title"] or ""
        return out

    def get(self, review_id: str) -> dict[str, Any] | None:
        """The review (:data:`REVIEW_COLUMNS`; ``item_title`` is "" when the item is unknown), or None."""
        with self._store.engine.connect() as conn:
            row = conn.execute(self._select().where(reviews_table.c.review_id == review_id)).first()
        return self._row(row) if row is not None else None

    def newest(self, *, limit: int, max_rating: int | None = None) -> list[dict[str, Any]]:
        """The newest reviews first (only those rated ``max_rating`` or lower, when given)."""
        statement = self._select()
        if max_rating is not None:
            statement = statement.where(reviews_table.c.rating.is_not(None), reviews_table.c.rating <= max_rating)
        statement = statement.order_by(reviews_table.c.ts_ms.desc(), reviews_table.c.review_id.desc()).limit(limit)
        with self._store.engine.connect() as conn:
            return [self._row(row) for row in conn.execute(statement)]

    def order_of(self, user_id: str | None, item_id: str, *, before_ms: int | None = None) -> dict[str, Any] | None:
        """The user's order that holds ``item_id``: the newest one placed by ``before_ms`` (else the oldest after).

        Returns the order's row (``order_id``, ``status``, ``currency``, ``total_amount``,
        ``created_ms``, ...) or None (no user, or no such order).
        """
        if not user_id:
            return None
        o = orders_table.c
        base = select(orders_table).where(
            o.user_id == user_id, o.order_id.in_(select(lines_table.c.order_id).where(lines_table.c.item_id == item_id))
        )
        with self._store.engine.connect() as conn:
            row = None
            if before_ms is not None:
                row = (
                    conn.execute(base.where(o.created_ms <= before_ms).order_by(o.created_ms.desc()).limit(1))
                    .mappings()
                    .first()
                )
            if row is None:
                row = conn.execute(base.order_by(o.created_ms).limit(1)).mappings().first()
        return dict(row) if row is not None else None
