"""The privacy-budget ledger, and the rows differentially private reports read.

The budget of a dataset is one row of ``privacy_budgets``; a release takes ε from it with one
conditional ``UPDATE ... SET spent = spent + ε WHERE spent + ε <= budget``, in the same
transaction that records the release. The database applies that condition under its write lock
(SQLite) or row lock (PostgreSQL), so two releases racing for the last of the budget cannot both
pass, and a release is either recorded and paid for or neither.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> spent = store.privacy.spend("shop", budget=1.0, report="daily-views", query_key="q1", epsilon=0.75,
    ...                             parameters={}, body={"cells": []})
    >>> spent.granted, spent.spent
    (True, 0.75)
    >>> store.privacy.spend("shop", budget=1.0, report="daily-views", query_key="q2", epsilon=0.5,
    ...                     parameters={}, body={}).granted          # would pass the budget: refused
    False
    >>> store.privacy.spent("shop")
    0.75
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shoplm.store.schema import events as events_table
from shoplm.store.schema import items as items_table
from shoplm.store.schema import order_lines as lines_table
from shoplm.store.schema import orders as orders_table
from shoplm.store.schema import privacy_budgets as budgets_table
from shoplm.store.schema import privacy_releases as releases_table
from shoplm.store.schema import reviews as reviews_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: Orders whose goods were sold and kept (or not yet returned): what a sales report counts.
SOLD_STATUSES = ("pending", "paid", "shipped", "delivered", "return_requested")
# Budgets compare floats: sums of decimal ε such as 0.1 + 0.2 may sit a hair above 0.3.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Spend:
    """The outcome of asking the ledger for a release.

    Attributes:
        granted: the release was recorded and paid for now.
        repeated: an identical query over the same data was released before; ``release`` is that one.
        spent: the dataset's ε spent after this call.
        release: the ledger entry (id, report, ε, parameters, body, key id, time); None if refused.
    """

    granted: bool
    repeated: bool
    spent: float
    release: dict[str, Any] | None


def _now_ms() -> int:
    return int(time.time() * 1000)


class PrivacyRepository:
    """The ``privacy_budgets`` and ``privacy_releases`` tables, and the report source rows."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- the ledger --------------------------------------------------------------------
    def spend(
        self,
        dataset: str,
        *,
        budget: float,
        report: str,
        query_key: str,
        epsilon: float,
        parameters: dict[str, Any],
        body: dict[str, Any],
        delta: float = 0.0,
        key_id: str | None = None,
    ) -> Spend:
        """Record a release and take its ε from the dataset's budget, atomically; or refuse.

        An identical query (same ``query_key``) released before is answered with that release,
        free: the same noise again tells nothing new.

        Args:
            dataset: the ledger's name for the data.
            budget: the dataset's total ε.
            report, query_key, epsilon, parameters, body, delta, key_id: what is recorded.

        Returns:
            :class:`Spend`; ``granted`` False (and nothing recorded) when ε would pass the budget.
        """
        try:
            with self._store.transaction() as conn:
                stored = self._find(conn, dataset, query_key)
                if stored is not None:
                    return Spend(False, True, self._spent(conn, dataset), stored)
                self._ensure_budget_row(conn, dataset)
                taken = conn.execute(
                    update(budgets_table)
                    .where(
                        budgets_table.c.dataset == dataset,
                        budgets_table.c.spent_epsilon + epsilon <= budget + _TOLERANCE,
                    )
                    .values(spent_epsilon=budgets_table.c.spent_epsilon + epsilon, updated_ms=_now_ms())
                ).rowcount
                if taken != 1:
                    return Spend(False, False, self._spent(conn, dataset), None)
                row = {
                    "release_id": uuid.uuid4().hex,
                    "dataset": dataset,
                    "report": report,
                    "query_key": query_key,
                    "epsilon": float(epsilon),
                    "delta": float(delta),
                    "parameters": json.dumps(parameters, sort_keys=True, default=str),
                    "body": json.dumps(body, default=str),
                    "key_id": key_id,
                    "created_ms": _now_ms(),
                }
                conn.execute(insert(releases_table), [row])
                return Spend(True, False, self._spent(conn, dataset), _release_dict(row))
        except IntegrityError:
            # The same query recorded by a concurrent caller between our look and our insert:
            # this transaction (and its spend) rolled back; answer theirs.
            stored = self.find(dataset, query_key)
            if stored is None:
                raise
            return Spend(False, True, self.spent(dataset), stored)

    def _ensure_budget_row(self, conn: Connection, dataset: str) -> None:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        conn.execute(
            dialect_insert(budgets_table)
            .values(dataset=dataset, spent_epsilon=0.0, updated_ms=_now_ms())
            .on_conflict_do_nothing(index_elements=["dataset"])
        )

    def _find(self, conn: Connection, dataset: str, query_key: str) -> dict[str, Any] | None:
        row = (
            conn.execute(
                select(releases_table).where(
                    releases_table.c.dataset == dataset, releases_table.c.query_key == query_key
                )
            )
            .mappings()
            .first()
        )
        return _release_dict(dict(row)) if row is not None else None

    def _spent(self, conn: Connection, dataset: str) -> float:
        value = conn.execute(
            select(budgets_table.c.spent_epsilon).where(budgets_table.c.dataset == dataset)
        ).scalar_one_or_none()
        return float(value or 0.0)

    def find(self, dataset: str, query_key: str) -> dict[str, Any] | None:
        """The release recorded for ``query_key``, if any."""
        with self._store.engine.connect() as conn:
            return self._find(conn, dataset, query_key)

    def spent(self, dataset: str) -> float:
        """ε spent on ``dataset`` so far (0 before its first release)."""
        with self._store.engine.connect() as conn:
            return self._spent(conn, dataset)

    def releases(self, dataset: str, *, limit: int = 100, with_body: bool = False) -> list[dict[str, Any]]:
        """The dataset's releases, newest first (without their noisy cells unless ``with_body``)."""
        statement = (
            select(releases_table)
            .where(releases_table.c.dataset == dataset)
            .order_by(releases_table.c.created_ms.desc(), releases_table.c.release_id)
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            rows = [_release_dict(dict(row)) for row in conn.execute(statement).mappings()]
        if not with_body:
            for row in rows:
                row.pop("body")
        return rows

    def count_releases(self, dataset: str) -> int:
        statement = select(func.count()).select_from(releases_table).where(releases_table.c.dataset == dataset)
        with self._store.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    # -- what reports read ---------------------------------------------------------------
    def sales_rows(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Order lines of sold orders in ``[start_ms, end_ms)``, oldest first.

        Columns: user_id (the order id for a guest checkout), item_id, quantity, unit_price, ts_ms.
        """
        statement = (
            select(
                func.coalesce(orders_table.c.user_id, orders_table.c.order_id),
                lines_table.c.item_id,
                lines_table.c.quantity,
                lines_table.c.unit_price,
                orders_table.c.created_ms,
            )
            .select_from(orders_table.join(lines_table, lines_table.c.order_id == orders_table.c.order_id))
            .where(
                orders_table.c.created_ms >= start_ms,
                orders_table.c.created_ms < end_ms,
                orders_table.c.status.in_(SOLD_STATUSES),
                lines_table.c.quantity > 0,
            )
            .order_by(orders_table.c.created_ms, orders_table.c.order_id, lines_table.c.line_no)
        )
        return self._rows(statement, ["user_id", "item_id", "quantity", "unit_price", "ts_ms"])

    def view_rows(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """View events in ``[start_ms, end_ms)`` not flagged as bot bursts, oldest first (user_id, item_id, ts_ms)."""
        statement = (
            select(events_table.c.user_id, events_table.c.item_id, events_table.c.ts_ms)
            .where(
                events_table.c.event_type == "view",
                events_table.c.item_id.is_not(None),
                events_table.c.ts_ms >= start_ms,
                events_table.c.ts_ms < end_ms,
                events_table.c.suspected_bot.is_(False),
            )
            .order_by(events_table.c.ts_ms, events_table.c.event_id)
        )
        return self._rows(statement, ["user_id", "item_id", "ts_ms"])

    def rating_rows(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Rated reviews in ``[start_ms, end_ms)``, oldest first (user_id or review id, item_id, rating, ts_ms)."""
        statement = (
            select(
                func.coalesce(reviews_table.c.user_id, reviews_table.c.review_id),
                reviews_table.c.item_id,
                reviews_table.c.rating,
                reviews_table.c.ts_ms,
            )
            .where(
                reviews_table.c.rating.is_not(None),
                reviews_table.c.ts_ms >= start_ms,
                reviews_table.c.ts_ms < end_ms,
            )
            .order_by(reviews_table.c.ts_ms, reviews_table.c.review_id)
        )
        return self._rows(statement, ["user_id", "item_id", "rating", "ts_ms"])

    def item_categories(self) -> pd.DataFrame:
        """The catalog's item_id and category (path) columns."""
        return self._rows(select(items_table.c.item_id, items_table.c.category), ["item_id", "category"])

    def _rows(self, statement: Any, columns: list[str]) -> pd.DataFrame:
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)


def _release_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "release_id": row["release_id"],
        "dataset": row["dataset"],
        "report": row["report"],
        "epsilon": float(row["epsilon"]),
        "delta": float(row["delta"]),
        "parameters": json.loads(row["parameters"]) if isinstance(row["parameters"], str) else row["parameters"],
        "body": json.loads(row["body"]) if isinstance(row["body"], str) else row["body"],
        "key_id": row["key_id"],
        "created_ms": int(row["created_ms"]),
    }
