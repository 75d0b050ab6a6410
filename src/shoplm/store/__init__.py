"""Persistent storage of the shop's data: schema, SQLite/PostgreSQL engine, one repository per table family.

All SQL of shoplm lives in this package (a test enforces it): the other floors call the
repositories, ``store.events``, ``store.items``, ``store.users``, ``store.orders``,
``store.conversations`` and ``store.api_keys``, or the generic table reads and upserts of
:class:`Store`.
"""

from shoplm.store.database import Store, UpsertResult, make_store_engine, sqlite_files
from shoplm.store.hashing import content_hash
from shoplm.store.schema import EVENT_TYPES, MESSAGE_ROLES, ORDER_STATUSES, TABLES

__all__ = [
    "EVENT_TYPES",
    "MESSAGE_ROLES",
    "ORDER_STATUSES",
    "TABLES",
    "Store",
    "UpsertResult",
    "content_hash",
    "make_store_engine",
    "sqlite_files",
]
