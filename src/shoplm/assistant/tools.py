"""Grounded order tools: track, cancel, refund, change the shipping address.

Every tool reads the order from the store and answers with :class:`~shoplm.lm.Fact` objects
taken from it; nothing is made up. An order of another user is reported exactly like an order
that does not exist (no information leaks). Changing tools come in two steps: ``check_*``
says whether the change is allowed now (and builds the confirmation summary), ``apply``
makes it in one transaction after the customer confirmed, re-checking the status inside the
transaction (the order may have shipped in between).

Status rules (the demo policies): an order can be cancelled, or its address changed, only
before it ships (``pending``, ``paid``); a refund can be started for ``paid``, ``shipped`` and
``delivered`` orders; ``cancelled``, ``refunded`` and ``returned`` orders are final.

Example:
    >>> from shoplm.store import Store
    >>> tools = OrderTools(Store.open("sqlite://"))
    >>> tools.track("O404", "u_someone").outcome
    'unknown_order'
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from shoplm.ingest.pipeline import content_hash
from shoplm.ingest.pseudonymize import mask_pii
from shoplm.lm import Fact
from shoplm.store import Store
from shoplm.store.schema import items as items_table
from shoplm.store.schema import order_lines as lines_table
from shoplm.store.schema import orders as orders_table

ToolName = Literal["track", "cancel", "refund", "change_address"]
CHANGING_TOOLS: tuple[ToolName, ...] = ("cancel", "refund", "change_address")

CANCELLABLE = frozenset({"pending", "paid"})
REFUNDABLE = frozenset({"paid", "shipped", "delivered"})
ADDRESS_CHANGEABLE = frozenset({"pending", "paid"})
FINAL = frozenset({"cancelled", "refunded", "returned"})

#: What each changing tool sets the order's status to.
NEW_STATUS: dict[str, str | None] = {"cancel": "cancelled", "refund": "refunded", "change_address": None}

#: Intents of the support taxonomy (Bitext names + the demo's) that an order tool serves.
INTENT_TOOLS: dict[str, ToolName] = {
    "track_order": "track",
    "track_refund": "track",
    "check_invoice": "track",
    "get_invoice": "track",
    "cancel_order": "cancel",
    "get_refund": "refund",
    "change_shipping_address": "change_address",
    "set_up_shipping_address": "change_address",
}

_SYMBOLS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
MAX_ADDRESS_CHARS = 300


def format_money(amount: float, currency: str) -> str:
    """``¥199.00`` / ``$5.50`` / ``12.00 SEK``.

    Example:
        >>> format_money(199, "CNY"), format_money(12, "SEK")
        ('¥199.00', '12.00 SEK')
    """
    code = (currency or "").upper()
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {code}".strip()


def format_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    item_id: str
    title: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class OrderView:
    """One order as stored, with its lines and their titles."""

    order_id: str
    user_id: str
    status: str
    currency: str
    total_amount: float
    shipping_address: str
    created_ms: int
    updated_ms: int
    lines: tuple[OrderLine, ...]

    @property
    def total(self) -> str:
        return format_money(self.total_amount, self.currency)

    def facts(self) -> list[Fact]:
        """The order as facts: id, status, dates, total, lines (title × quantity, price)."""
        source = f"orders:{self.order_id}"
        out = [
            Fact("order_id", self.order_id, source),
            Fact("status", self.status, source),
            Fact("order_date", format_date(self.created_ms), source),
            Fact("last_update", format_date(self.updated_ms), source),
            Fact("amount", self.total, source),
        ]
        for line in self.lines:
            price = format_money(line.unit_price, self.currency)
            out.append(Fact("line", f"{line.title} × {line.quantity} ({price})", f"order_lines:{self.order_id}"))
        return out


@dataclass
class ToolResult:
    """What a tool found or did: ``outcome`` is one of ``ok``, ``done``, ``unknown_order``,
    ``not_allowed``, ``needs_input``, ``failed``; ``facts`` are what the reply may say."""

    tool: str
    outcome: str
    order_id: str | None = None
    facts: list[Fact] = field(default_factory=list)
    status: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in {"ok", "done"}


def order_content_hash(order: dict[str, object], lines: pd.DataFrame) -> str:
    """The ``content_hash`` ingest would give this order row and these lines (kept consistent on change).

    Mirrors ``shoplm.ingest.pipeline._store_orders``: the hash covers the order's columns and
    the digest of its lines, with missing values as empty strings.
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


class OrderTools:
    """The order tools over a store. ``user_key`` arguments are pseudonymous user ids (as stored).

    Example:
        >>> tools = OrderTools(Store.open("sqlite://"))
        >>> tools.check("cancel", "O1", "u_x").outcome
        'unknown_order'
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ------------------------------------------------------------------------
    def get(self, order_id: str, user_key: str, *, connection: Connection | None = None) -> OrderView | None:
        """The order if it exists and belongs to ``user_key``; None otherwise (the two are not told apart)."""
        if connection is None:
            with self.store.engine.connect() as conn:
                return self.get(order_id, user_key, connection=conn)
        row = connection.execute(select(orders_table).where(orders_table.c.order_id == order_id)).mappings().first()
        if row is None or not user_key or row["user_id"] != user_key:
            return None
        statement = (
            select(lines_table, items_table.c.title)
            .select_from(lines_table.outerjoin(items_table, items_table.c.item_id == lines_table.c.item_id))
            .where(lines_table.c.order_id == order_id)
            .order_by(lines_table.c.line_no)
        )
        lines = tuple(
            OrderLine(
                int(r["line_no"]),
                str(r["item_id"]),
                str(r["title"] or r["item_id"]),
                int(r["quantity"]),
                float(r["unit_price"]),
            )
            for r in connection.execute(statement).mappings()
        )
        return OrderView(
            order_id=str(row["order_id"]),
            user_id=str(row["user_id"]),
            status=str(row["status"]),
            currency=str(row["currency"] or ""),
            total_amount=float(row["total_amount"]),
            shipping_address=str(row["shipping_address"] or ""),
            created_ms=int(row["created_ms"]),
            updated_ms=int(row["updated_ms"]),
            lines=lines,
        )

    def recent_orders(self, user_key: str, limit: int = 3) -> list[tuple[str, str]]:
        """The user's newest orders as (order id, status), newest first (for "which order?")."""
        if not user_key:
            return []
        statement = (
            select(orders_table.c.order_id, orders_table.c.status)
            .where(orders_table.c.user_id == user_key)
            .order_by(orders_table.c.created_ms.desc())
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [(str(a), str(b)) for a, b in conn.execute(statement)]

    def track(self, order_id: str, user_key: str) -> ToolResult:
        """Status, dates, total and lines of the order."""
        order = self.get(order_id, user_key)
        if order is None:
            return _unknown("track", order_id)
        return ToolResult("track", "ok", order.order_id, order.facts(), order.status)

    # -- changing -----------------------------------------------------------------------
    def check(self, tool: ToolName, order_id: str, user_key: str, *, new_address: str = "") -> ToolResult:
        """Whether ``tool`` may change the order now; ``ok`` means: ask the customer to confirm."""
        order = self.get(order_id, user_key)
        if order is None:
            return _unknown(tool, order_id)
        return _rule(tool, order, new_address)

    def apply(self, tool: ToolName, order_id: str, user_key: str, *, new_address: str = "") -> ToolResult:
        """Make the confirmed change in one transaction; the rules are checked again inside it."""
        if tool not in CHANGING_TOOLS:
            raise ValueError(f"{tool!r} changes nothing")
        now = int(time.time() * 1000)
        with self.store.engine.begin() as conn:
            order = self.get(order_id, user_key, connection=conn)
            if order is None:
                return _unknown(tool, order_id)
            verdict = _rule(tool, order, new_address)
            if verdict.outcome != "ok":
                return verdict
            values: dict[str, object] = {"updated_ms": max(now, order.updated_ms)}
            if NEW_STATUS[tool]:
                values["status"] = NEW_STATUS[tool]
            if tool == "change_address":
                values["shipping_address"] = clean_address(new_address)
            stored = dict(
                conn.execute(select(orders_table).where(orders_table.c.order_id == order_id)).mappings().one()
            )
            stored.update(values)
            lines = pd.DataFrame(
                conn.execute(
                    select(lines_table).where(lines_table.c.order_id == order_id).order_by(lines_table.c.line_no)
                )
                .mappings()
                .all(),
                columns=[c.name for c in lines_table.columns],
            )
            values["content_hash"] = order_content_hash(stored, lines)
            # The status in the WHERE clause makes the update a compare-and-set.
            updated = conn.execute(
                orders_table.update()
                .where(orders_table.c.order_id == order_id, orders_table.c.status == order.status)
                .values(**values)
            ).rowcount
            if updated != 1:
                return ToolResult(tool, "failed", order_id, reason="the order changed meanwhile")
        changed = self.get(order_id, user_key)
        assert changed is not None
        source = f"orders:{order_id}"
        facts = [Fact("order_id", order_id, source), Fact("status", changed.status, source)]
        if tool in {"cancel", "refund"} and order.status != "pending":
            facts.append(Fact("refund_amount", changed.total, source))
        if tool == "change_address":
            facts.append(Fact("new_address", changed.shipping_address, source))
        return ToolResult(tool, "done", order_id, facts, changed.status)


def clean_address(text: str) -> str:
    """An address as it may be stored: one line, PII masked, at most ``MAX_ADDRESS_CHARS``."""
    return mask_pii(" ".join(text.split()))[:MAX_ADDRESS_CHARS].strip(" ,，。.")


def _unknown(tool: str, order_id: str) -> ToolResult:
    return ToolResult(tool, "unknown_order", order_id, [Fact("order_id", order_id, "request")], reason="unknown order")


def _rule(tool: ToolName, order: OrderView, new_address: str) -> ToolResult:
    source = f"orders:{order.order_id}"
    base = [Fact("order_id", order.order_id, source), Fact("status", order.status, source)]
    if tool == "track":
        return ToolResult(tool, "ok", order.order_id, order.facts(), order.status)
    allowed = {"cancel": CANCELLABLE, "refund": REFUNDABLE, "change_address": ADDRESS_CHANGEABLE}[tool]
    if order.status not in allowed:
        return ToolResult(tool, "not_allowed", order.order_id, base, order.status, reason=f"status {order.status}")
    if tool == "change_address":
        address = clean_address(new_address)
        if not address:
            return ToolResult(tool, "needs_input", order.order_id, base, order.status, reason="no new address")
        facts = [*base, Fact("address", order.shipping_address, source), Fact("new_address", address, "customer")]
        return ToolResult(tool, "ok", order.order_id, facts, order.status)
    return ToolResult(tool, "ok", order.order_id, [*base, Fact("amount", order.total, source)], order.status)


def summary_digest(tool: str, order_id: str, new_address: str = "") -> str:
    """A short id of a proposed change, so a confirmation applies exactly what was summarized."""
    return hashlib.blake2b(f"{tool}\x1f{order_id}\x1f{new_address}".encode(), digest_size=6).hexdigest()
