"""Grounded order tools: track, cancel, refund, change the shipping address, return.

Every tool reads the order from an :class:`OrderBook` (the store's orders repository in the
product, ``store.orders``) and answers with :class:`~shoplm.lm.Fact` objects taken from it;
nothing is made up. An order of another user is reported exactly like an order that does not
exist (no information leaks). Changing tools come in two steps: ``check`` says whether the
change is allowed now (and builds the confirmation summary), ``apply`` makes it after the
customer confirmed, as a compare-and-set on the status it was confirmed against (the order may
have shipped in between: then the rules are applied to its new status).

Status rules (the demo policies): an order can be cancelled, or its address changed, only
before it ships (``pending``, ``paid``); a refund can be started for ``paid``, ``shipped`` and
``delivered`` orders; a return for a ``delivered`` order within the :class:`ReturnPolicy`'s
days of delivery (the order's last update, when it was marked delivered) whose items are not
in an excluded category; ``cancelled``, ``refunded`` and ``returned`` orders are final.

Example:
    >>> tools = OrderTools(MemoryOrderBook())
    >>> tools.track("O404", "u_someone").outcome
    'unknown_order'
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shoplm.ingest.pseudonymize import mask_pii
from shoplm.lm import Fact

ToolName = Literal["track", "cancel", "refund", "change_address", "return"]
CHANGING_TOOLS: tuple[ToolName, ...] = ("cancel", "refund", "change_address", "return")

CANCELLABLE = frozenset({"pending", "paid"})
REFUNDABLE = frozenset({"paid", "shipped", "delivered"})
ADDRESS_CHANGEABLE = frozenset({"pending", "paid"})
RETURNABLE = frozenset({"delivered"})
FINAL = frozenset({"cancelled", "refunded", "returned", "reversal"})
DAY_MS = 86_400_000

#: What each changing tool sets the order's status to.
NEW_STATUS: dict[str, str | None] = {
    "cancel": "cancelled",
    "refund": "refunded",
    "change_address": None,
    "return": "return_requested",
}

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
    "return_item": "return",
}


@dataclass(frozen=True)
class ReturnPolicy:
    """When a delivered order may be returned: within ``days`` of delivery, no item excluded.

    Args:
        days: days after delivery a return may start (the demo policy: 7-day no-reason returns).
        excluded_categories: category names (any level of the ``A > B`` path, case-insensitive)
            whose items cannot be returned (the demo policy: food and tea, pet food, opened
            skincare and makeup).

    Example:
        >>> ReturnPolicy().excludes("Grocery > Tea & Coffee"), ReturnPolicy().excludes("Home > Kitchen")
        (True, False)
    """

    days: int = 7
    excluded_categories: tuple[str, ...] = ("Food", "Grocery", "Tea & Coffee", "Skincare", "Makeup", "Pets")

    def excludes(self, category: str) -> bool:
        levels = {level.strip().lower() for level in str(category or "").split(">")}
        return any(name.strip().lower() in levels for name in self.excluded_categories)


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


class OrderBook(Protocol):
    """Where the tools read and change orders (``store.orders`` in the product)."""

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The order's row (``order_id, user_id, status, currency, total_amount, ...``) or None."""

    def lines(self, order_id: str) -> list[dict[str, Any]]:
        """The order's lines in order, each with ``line_no, item_id, quantity, unit_price, title``."""

    def recent(self, user_id: str, *, limit: int) -> list[tuple[str, str]]:
        """The user's newest orders as (order id, status), newest first."""

    def change_if_status(self, order_id: str, expected_status: str, values: dict[str, Any]) -> bool:
        """Set ``values`` if the status is still ``expected_status``; True if changed."""


class MemoryOrderBook:
    """An :class:`OrderBook` in memory (for examples, tests and dry runs).

    Example:
        >>> book = MemoryOrderBook([{"order_id": "O1", "user_id": "u", "status": "paid"}])
        >>> book.change_if_status("O1", "paid", {"status": "cancelled"}), book.get("O1")["status"]
        (True, 'cancelled')
    """

    def __init__(
        self, orders: Sequence[Mapping[str, Any]] = (), lines: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
    ) -> None:
        self._orders = {str(o["order_id"]): dict(o) for o in orders}
        self._lines = {k: [dict(line) for line in v] for k, v in (lines or {}).items()}

    def get(self, order_id: str) -> dict[str, Any] | None:
        found = self._orders.get(order_id)
        return dict(found) if found is not None else None

    def lines(self, order_id: str) -> list[dict[str, Any]]:
        return [dict(line) for line in self._lines.get(order_id, [])]

    def recent(self, user_id: str, *, limit: int) -> list[tuple[str, str]]:
        mine = [o for o in self._orders.values() if user_id and o.get("user_id") == user_id]
        mine.sort(key=lambda o: o.get("created_ms", 0), reverse=True)
        return [(str(o["order_id"]), str(o["status"])) for o in mine[:limit]]

    def change_if_status(self, order_id: str, expected_status: str, values: dict[str, Any]) -> bool:
        order = self._orders.get(order_id)
        if order is None or order.get("status") != expected_status:
            return False
        order.update(values)
        return True


class OrderTools:
    """The order tools over an :class:`OrderBook`. ``user_key`` arguments are pseudonymous user ids (as stored).

    Example:
        >>> tools = OrderTools(MemoryOrderBook())
        >>> tools.check("cancel", "O1", "u_x").outcome
        'unknown_order'
    """

    def __init__(
        self,
        orders: OrderBook,
        *,
        return_policy: ReturnPolicy | None = None,
        category_of: Callable[[str], str] | None = None,
    ) -> None:
        self.orders = orders
        self.return_policy = return_policy or ReturnPolicy()
        #: the catalog category of an item id (for the return exclusions); None: nothing excluded
        self.category_of = category_of

    # -- reading ------------------------------------------------------------------------
    def get(self, order_id: str, user_key: str) -> OrderView | None:
        """The order if it exists and belongs to ``user_key``; None otherwise (the two are not told apart)."""
        row = self.orders.get(order_id)
        if row is None or not user_key or row.get("user_id") != user_key:
            return None
        lines = tuple(
            OrderLine(
                int(r["line_no"]),
                str(r["item_id"]),
                str(r.get("title") or r["item_id"]),
                int(r["quantity"]),
                float(r["unit_price"]),
            )
            for r in self.orders.lines(order_id)
        )
        return OrderView(
            order_id=str(row["order_id"]),
            user_id=str(row["user_id"]),
            status=str(row["status"]),
            currency=str(row.get("currency") or ""),
            total_amount=float(row.get("total_amount") or 0.0),
            shipping_address=str(row.get("shipping_address") or ""),
            created_ms=int(row.get("created_ms") or 0),
            updated_ms=int(row.get("updated_ms") or 0),
            lines=lines,
        )

    def recent_orders(self, user_key: str, limit: int = 5) -> list[tuple[str, str]]:
        """The user's newest orders as (order id, status), newest first (for "which order?")."""
        return self.orders.recent(user_key, limit=limit) if user_key else []

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
        return self._rule(tool, order, new_address)

    def apply(self, tool: ToolName, order_id: str, user_key: str, *, new_address: str = "") -> ToolResult:
        """Make the confirmed change: a compare-and-set on the status the rules were checked against."""
        if tool not in CHANGING_TOOLS:
            raise ValueError(f"{tool!r} changes nothing")
        for _attempt in range(3):  # the order may change between the check and the write: look again
            order = self.get(order_id, user_key)
            if order is None:
                return _unknown(tool, order_id)
            verdict = self._rule(tool, order, new_address)
            if verdict.outcome != "ok":
                return verdict
            values: dict[str, object] = {"updated_ms": max(int(time.time() * 1000), order.updated_ms)}
            if NEW_STATUS[tool]:
                values["status"] = NEW_STATUS[tool]
            if tool == "change_address":
                values["shipping_address"] = clean_address(new_address)
            if self.orders.change_if_status(order_id, order.status, values):
                break
        else:
            return ToolResult(tool, "failed", order_id, reason="the order changed meanwhile")
        changed = self.get(order_id, user_key)
        assert changed is not None
        source = f"orders:{order_id}"
        facts = [Fact("order_id", order_id, source), Fact("status", changed.status, source)]
        if tool in {"cancel", "refund"} and order.status != "pending":
            facts.append(Fact("refund_amount", changed.total, source))
        if tool == "return":
            facts.append(Fact("amount", changed.total, source))
        if tool == "change_address":
            facts.append(Fact("new_address", changed.shipping_address, source))
        return ToolResult(tool, "done", order_id, facts, changed.status)

    def _rule(self, tool: ToolName, order: OrderView, new_address: str) -> ToolResult:
        source = f"orders:{order.order_id}"
        base = [Fact("order_id", order.order_id, source), Fact("status", order.status, source)]
        if tool == "track":
            return ToolResult(tool, "ok", order.order_id, order.facts(), order.status)
        if tool == "return":
            return self._return_rule(order, base)
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

    def _return_rule(self, order: OrderView, base: list[Fact]) -> ToolResult:
        """A return is allowed for a delivered order, within the policy's days, with no excluded item."""
        source, policy = f"orders:{order.order_id}", self.return_policy
        if order.status not in RETURNABLE:
            return ToolResult("return", "not_allowed", order.order_id, base, order.status, reason="status")
        delivered = [Fact("delivered_on", format_date(order.updated_ms), source)]
        days = max(0, (int(time.time() * 1000) - order.updated_ms) // DAY_MS)
        if days > policy.days:
            facts = [*base, *delivered, Fact("return_days", str(policy.days), "policy:returns")]
            return ToolResult("return", "not_allowed", order.order_id, facts, order.status, reason="window")
        if self.category_of is not None:
            for line in order.lines:
                category = self.category_of(line.item_id)
                if policy.excludes(category):
                    facts = [
                        *base,
                        Fact("item", line.title, f"order_lines:{order.order_id}"),
                        Fact("category", category, f"items:{line.item_id}"),
                    ]
                    return ToolResult("return", "not_allowed", order.order_id, facts, order.status, reason="excluded")
        deadline = format_date(order.updated_ms + policy.days * DAY_MS)
        facts = [*base, *delivered, Fact("return_by", deadline, "policy:returns"), Fact("amount", order.total, source)]
        return ToolResult("return", "ok", order.order_id, facts, order.status)


def clean_address(text: str) -> str:
    """An address as it may be stored: one line, PII masked, at most ``MAX_ADDRESS_CHARS``."""
    return mask_pii(" ".join(text.split()))[:MAX_ADDRESS_CHARS].strip(" ,，。.")


def _unknown(tool: str, order_id: str) -> ToolResult:
    return ToolResult(tool, "unknown_order", order_id, [Fact("order_id", order_id, "request")], reason="unknown order")


def summary_digest(tool: str, order_id: str, new_address: str = "") -> str:
    """A short id of a proposed change, so a confirmation applies exactly what was summarized."""
    return hashlib.blake2b(f"{tool}\x1f{order_id}\x1f{new_address}".encode(), digest_size=6).hexdigest()
