"""Orders and their lines: read one with its lines, list a user's newest, change one safely, store a batch.

A change made by an order tool (cancel, refund, new address) is a compare-and-set on the
status: it happens only if the order still has the status the customer confirmed against, and
the row's ``content_hash`` is recomputed as ingest would compute it, so a later re-ingest of an
older file does not undo the change.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.orders.get("O404") is None, store.orders.recent("u_1", limit=3)
    (True, [])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from shoplm.store.hashing import content_hash
from shoplm.store.schema import items as items_table
from shoplm.store.schema import order_lines as lines_table
from shoplm.store.schema import orders as orders_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

_BATCH = 900


def order_content_hash(order: dict[str, object], lines: pd.DataFrame) -> str:
    """The ``content_hash`` ingest gives this order row and these lines.

    The hash covers the order's columns and the digest of its lines, with missing values as
    empty strings (see :func:`OrderRepository.save_batch`, which ingest uses).
    """
    columns = [c.name for c in orders_table.columns if c.name != "content_hash"]
    line_frame = pd.DataFrame(
        {
            "order_id": lines["order_id"].astype(str),
            "line_no": lines["line_no"].astype(np.int64),
            "item_id": lines["item_id"].astype(str),
            "quantity": lines["quantity"].astype(np.int64),
            "unit_price": lines["unit_price"].astype(np.float64),
        }
    )
    digest = "".join(content_hash(line_frame, list(line_frame.columns)).tolist()) if len(line_frame) else ""
    row = pd.DataFrame([{c: order.get(c) for c in columns}])
    row["created_ms"] = row["created_ms"].astype(np.int64)
    row["updated_ms"] = row["updated_ms"].astype(np.int64)
    row["total_amount"] = row["total_amount"].astype(np.float64)
    row = row.assign(lines=digest).fillna("")
    return str(content_hash(row, [*columns, "lines"]).iloc[0])


def batch_content_hashes(orders: pd.DataFrame, lines: pd.DataFrame) -> pd.Series:
    """:func:`order_content_hash` of many orders at once (the ingest path)."""
    line_digest = content_hash(lines, list(lines.columns)).groupby(lines["order_id"]).agg("".join)
    return content_hash(
        orders.assign(lines=orders["order_id"].map(line_digest)).fillna(""),
        [*orders.columns, "lines"],
    )


@dataclass(frozen=True)
class OrderBatch:
    """What :meth:`OrderRepository.save_batch` did: ids stored new, ids replaced, rows kept as stored."""

    new_ids: frozenset[str]
    changed_ids: frozenset[str]
    stale: int


class OrderRepository:
    """The ``orders`` and ``order_lines`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reading ------------------------------------------------------------------------
    def get(self, order_id: str, *, connection: Connection | None = None) -> dict[str, Any] | None:
        """The order's row as a dict, or None."""
        if connection is None:
            with self._store.engine.connect() as conn:
                return self.get(order_id, connection=conn)
        row = connection.execute(select(orders_table).where(orders_table.c.order_id == order_id)).mappings().first()
        return dict(row) if row is not None else None

    def lines(self, order_id: str, *, connection: Connection | None = None) -> list[dict[str, Any]]:
        """The order's lines in line order, each with the item's ``title`` (None when the item is unknown)."""
        if connection is None:
            with self._store.engine.connect() as conn:
                return self.lines(order_id, connection=conn)
        statement = (
            select(lines_table, items_table.c.title)
            .select_from(lines_table.outerjoin(items_table, items_table.c.item_id == lines_table.c.item_id))
            .where(lines_table.c.order_id == order_id)
            .order_by(lines_table.c.line_no)
        )
        return [dict(row) for row in connection.execute(statement).mappings()]

    def recent(self, user_id: str, *, limit: int) -> list[tuple[str, str]]:
        """The user's newest orders as (order id, status), newest first."""
        if not user_id:
            return []
        statement = (
            select(orders_table.c.order_id, orders_table.c.status)
            .where(orders_table.c.user_id == user_id)
            .order_by(orders_table.c.created_ms.desc())
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            return [(str(a), str(b)) for a, b in conn.execute(statement)]

    def all_lines(self) -> pd.DataFrame:
        """Every order line with its order's user, status, currency, country and time, and the item's title.

        Columns: order_id, user_id, status, currency, country, created_ms, item_id, quantity,
        unit_price, title (None for an item not in the catalog); ordered by time. What the
        analytics jobs read (see ``shoplm.ingest.transactions.transactions_from_order_lines``).
        """
        statement = (
            select(
                orders_table.c.order_id,
                orders_table.c.user_id,
                orders_table.c.status,
                orders_table.c.currency,
                orders_table.c.country,
                orders_table.c.created_ms,
                lines_table.c.item_id,
                lines_table.c.quantity,
                lines_table.c.unit_price,
                items_table.c.title,
            )
            .select_from(
                orders_table.join(lines_table, lines_table.c.order_id == orders_table.c.order_id).outerjoin(
                    items_table, items_table.c.item_id == lines_table.c.item_id
                )
            )
            .order_by(orders_table.c.created_ms, orders_table.c.order_id, lines_table.c.line_no)
        )
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        columns = [
            "order_id",
            "user_id",
            "status",
            "currency",
            "country",
            "created_ms",
            "item_id",
            "quantity",
            "unit_price",
            "title",
        ]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame.astype({"created_ms": np.int64, "quantity": np.int64, "unit_price": np.float64})

    # -- changing one order -------------------------------------------------------------
    def change_if_status(self, order_id: str, expected_status: str, values: dict[str, Any]) -> bool:
        """Set ``values`` on the order if its status is still ``expected_status``; True if it was changed.

        Runs in one transaction and recomputes the row's ``content_hash`` over the new values.
        """
        with self._store.transaction() as conn:
            stored = self.get(order_id, connection=conn)
            if stored is None or stored["status"] != expected_status:
                return False
            stored.update(values)
            lines = pd.DataFrame(
                conn.execute(
                    select(lines_table).where(lines_table.c.order_id == order_id).order_by(lines_table.c.line_no)
                )
                .mappings()
                .all(),
                columns=[c.name for c in lines_table.columns],
            )
            update = {**values, "content_hash": order_content_hash(stored, lines)}
            # The status in the WHERE clause makes the update a compare-and-set.
            changed = conn.execute(
                orders_table.update()
                .where(orders_table.c.order_id == order_id, orders_table.c.status == expected_status)
                .values(**update)
            ).rowcount
            return changed == 1

    # -- a batch from ingest ------------------------------------------------------------
    def save_batch(self, orders: pd.DataFrame, lines: pd.DataFrame, *, connection: Connection) -> OrderBatch:
        """Store new orders and replace changed ones with their lines; never an order for an older row.

        Args:
            orders: one row per order with every column of ``orders`` (``content_hash`` included).
            lines: the orders' lines (``order_id, line_no, item_id, quantity, unit_price``).
            connection: the caller's transaction.

        Returns:
            The ids stored as new, the ids replaced, and how many changed rows were older than
            the stored order and so kept as stored (an order changed since the file was written,
            say cancelled through the assistant, keeps its newer state).
        """
        store = self._store
        orders, is_new, is_changed = store.classify("orders", orders, connection=connection)
        stale = np.zeros(len(orders), dtype=bool)
        if is_changed.any():
            changed = orders["order_id"][is_changed].tolist()
            stored_ms = self._updated_ms(changed, connection)
            stored = orders["order_id"].map(stored_ms).fillna(-1).to_numpy()
            stale = is_changed & (orders["updated_ms"].to_numpy() < stored)
            is_changed = is_changed & ~stale
        store.upsert("orders", orders[is_new | is_changed], connection=connection)
        new_ids = frozenset(orders["order_id"][is_new])
        changed_ids = frozenset(orders["order_id"][is_changed])
        if changed_ids:
            ids = sorted(changed_ids)
            for start in range(0, len(ids), _BATCH):
                connection.execute(lines_table.delete().where(lines_table.c.order_id.in_(ids[start : start + _BATCH])))
        store.upsert("order_lines", lines[lines["order_id"].isin(new_ids | changed_ids)], connection=connection)
        return OrderBatch(new_ids, changed_ids, int(stale.sum()))

    def _updated_ms(self, order_ids: list[str], connection: Connection) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(order_ids), _BATCH):
            chunk = order_ids[start : start + _BATCH]
            statement = select(orders_table.c.order_id, orders_table.c.updated_ms).where(
                orders_table.c.order_id.in_(chunk)
            )
            found.update({str(a): int(b) for a, b in connection.execute(statement)})
        return found
