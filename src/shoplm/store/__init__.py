"""Persistent storage of the shop's data: schema, SQLite/PostgreSQL engine, repository."""

from shoplm.store.database import Store, UpsertResult, make_store_engine
from shoplm.store.schema import EVENT_TYPES, MESSAGE_ROLES, ORDER_STATUSES, TABLES

__all__ = ["EVENT_TYPES", "MESSAGE_ROLES", "ORDER_STATUSES", "TABLES", "Store", "UpsertResult", "make_store_engine"]
