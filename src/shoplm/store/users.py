"""Users: pseudonymous ids only (keyed HMACs made at ingest).

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> _ = store.upsert("users", pd.DataFrame({"user_id": ["u_1"], "country": [""], "attributes": ["{}"],
    ...                                         "content_hash": ["h"]}))
    >>> store.users.exists("u_1"), store.users.exists("u_2")
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from shoplm.store.schema import events as events_table
from shoplm.store.schema import users as users_table

if TYPE_CHECKING:
    from shoplm.store.database import Store


class UserRepository:
    """Reads of the ``users`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def exists(self, user_id: str) -> bool:
        """True if the store knows the (pseudonymous) user, from the users table or an event."""
        with self._store.engine.connect() as conn:
            if conn.execute(select(users_table.c.user_id).where(users_table.c.user_id == user_id)).first():
                return True
            statement = select(events_table.c.user_id).where(events_table.c.user_id == user_id).limit(1)
            return conn.execute(statement).first() is not None
