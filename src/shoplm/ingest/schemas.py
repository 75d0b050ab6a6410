"""What each kind of input file holds: columns, types, rules. The single source of truth.

Files are CSV (UTF-8, header row), JSONL (one object a line) or Parquet. Column names are
case-insensitive. Timestamps are ISO-8601 (a time without zone is UTC) or Unix epoch
seconds or milliseconds. Extra columns of ``items`` and ``users`` are kept as attributes;
extra columns of other kinds are reported and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shoplm.store.schema import EVENT_TYPES, MESSAGE_ROLES, ORDER_STATUSES

FieldType = Literal["id", "text", "int", "float", "timestamp", "enum", "json"]


@dataclass(frozen=True)
class FieldSpec:
    """One input column: its type, whether it is required, and its limits."""

    name: str
    type: FieldType
    required: bool = False
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    pii: Literal["", "id", "email", "phone", "free_text"] = ""
    help: str = ""


@dataclass(frozen=True)
class KindSpec:
    """One kind of input (``items``, ``events``, ...)."""

    kind: str
    fields: tuple[FieldSpec, ...]
    id_field: str | None
    extra_to_attributes: bool = False
    help: str = ""
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


_TS_HELP = "ISO-8601, or Unix epoch seconds / milliseconds"

ITEMS = KindSpec(
    "items",
    (
        FieldSpec("item_id", "id", required=True),
        FieldSpec("title", "text", required=True),
        FieldSpec("description", "text"),
        FieldSpec("category", "text", help="path, levels joined by ' > ' (or '/')"),
        FieldSpec("brand", "text"),
        FieldSpec("price", "float", min_value=0),
        FieldSpec("currency", "text"),
        FieldSpec("stock", "int", min_value=0),
        FieldSpec("language", "text", help="e.g. zh, en; guessed from the title when empty"),
        FieldSpec("attributes", "json", help="a JSON object; extra columns are added to it"),
    ),
    id_field="item_id",
    extra_to_attributes=True,
    help="the catalog: one row per item; a changed row updates the item",
)

USERS = KindSpec(
    "users",
    (
        FieldSpec("user_id", "id", required=True, pii="id"),
        FieldSpec("email", "text", pii="email"),
        FieldSpec("phone", "text", pii="phone"),
        FieldSpec("country", "text"),
        FieldSpec("created_at", "timestamp", help=_TS_HELP),
        FieldSpec("attributes", "json"),
    ),
    id_field="user_id",
    extra_to_attributes=True,
    help="customers; ids, emails and phones are stored only as keyed hashes",
)

EVENTS = KindSpec(
    "events",
    (
        FieldSpec("event_id", "id", help="optional; without it a content hash is the id"),
        FieldSpec("user_id", "id", required=True, pii="id"),
        FieldSpec("item_id", "id", help="required except for 'search' events"),
        FieldSpec("event_type", "enum", required=True, choices=EVENT_TYPES),
        FieldSpec("timestamp", "timestamp", required=True, help=_TS_HELP),
        FieldSpec("session_id", "id"),
        FieldSpec("scene", "text"),
        FieldSpec("query", "text", pii="free_text"),
        FieldSpec("value", "float", help="the rating of a 'rate' event (1-5), or an amount"),
    ),
    id_field="event_id",
    help="behaviour: views, clicks, add-to-cart, purchases, searches, ratings",
    aliases={"type": "event_type", "ts": "timestamp", "time": "timestamp"},
)

ORDERS = KindSpec(
    "orders",
    (
        FieldSpec("order_id", "id", required=True),
        FieldSpec("user_id", "id", pii="id", help="empty for a guest checkout"),
        FieldSpec("status", "enum", required=True, choices=ORDER_STATUSES),
        FieldSpec("item_id", "id", required=True),
        FieldSpec("quantity", "int", required=True, min_value=1),
        FieldSpec("unit_price", "float", required=True, min_value=0),
        FieldSpec("created_at", "timestamp", required=True, help=_TS_HELP),
        FieldSpec("updated_at", "timestamp", help=_TS_HELP),
        FieldSpec("line_no", "int", min_value=0, help="optional; else the row's place in its order"),
        FieldSpec("currency", "text"),
        FieldSpec("country", "text"),
        FieldSpec("shipping_address", "text", pii="free_text"),
    ),
    id_field=None,
    help="one row per order line; the order's fields repeat on each of its lines",
)

REVIEWS = KindSpec(
    "reviews",
    (
        FieldSpec("review_id", "id", help="optional; without it a content hash is the id"),
        FieldSpec("item_id", "id", required=True),
        FieldSpec("user_id", "id", pii="id"),
        FieldSpec("rating", "int", min_value=1, max_value=5),
        FieldSpec("text", "text", required=True, pii="free_text"),
        FieldSpec("language", "text"),
        FieldSpec("timestamp", "timestamp", required=True, help=_TS_HELP),
    ),
    id_field="review_id",
    help="product reviews; emails and phone numbers in the text are masked",
)

CONVERSATIONS = KindSpec(
    "conversations",
    (
        FieldSpec("conversation_id", "id", required=True),
        FieldSpec("message_id", "id", help="optional; without it a content hash is the id"),
        FieldSpec("role", "enum", required=True, choices=MESSAGE_ROLES),
        FieldSpec("text", "text", required=True, pii="free_text"),
        FieldSpec("timestamp", "timestamp", required=True, help=_TS_HELP),
        FieldSpec("user_id", "id", pii="id"),
        FieldSpec("channel", "text"),
        FieldSpec("intent", "text", help="a label, when the shop has one"),
    ),
    id_field="message_id",
    help="support chats: one row per message",
)

IMPRESSIONS = KindSpec(
    "impressions",
    (
        FieldSpec("request_id", "id", required=True, help="one page view / request showing several items"),
        FieldSpec("user_id", "id", required=True, pii="id"),
        FieldSpec("ts", "timestamp", required=True, help=_TS_HELP),
        FieldSpec("scene", "text", help="e.g. home, search, item_detail"),
        FieldSpec("position", "int", required=True, min_value=0, help="slot on the page, 0 = first"),
        FieldSpec("item_id", "id", required=True),
        FieldSpec("clicked", "int", required=True, min_value=0, max_value=1),
        FieldSpec("added_to_cart", "int", min_value=0, max_value=1),
        FieldSpec("creative", "int", min_value=0, help="the ad-copy variant shown, when known"),
        FieldSpec("p_click", "float", help="the demo's true click probability: checked, never stored"),
    ),
    id_field=None,
    help="impression logs: one row per item shown in a request, with its click and add-to-cart",
    aliases={"timestamp": "ts", "time": "ts"},
)

KINDS: dict[str, KindSpec] = {
    k.kind: k for k in (ITEMS, USERS, EVENTS, ORDERS, REVIEWS, CONVERSATIONS, IMPRESSIONS)
}
