"""API keys and the dashboard logins made with them: rows of hashes, never a key or a token itself.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.api_keys.insert(key_id="k1", name="", scope="read", salt="00", key_hash="ab", iterations=1,
    ...                       created_ms=1)
    >>> store.api_keys.get("k1").scope, store.api_keys.revoke("k1", now_ms=2), store.api_keys.revoke("k1", now_ms=3)
    ('read', True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update

from shoplm.store.schema import api_keys as api_keys_table
from shoplm.store.schema import dashboard_sessions as sessions_table

if TYPE_CHECKING:
    from shoplm.store.database import Store


class ApiKeyRepository:
    """The ``api_keys`` and ``dashboard_sessions`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._get = select(api_keys_table).where(api_keys_table.c.key_id == bindparam("key_id"))

    def insert(
        self, *, key_id: str, name: str, scope: str, salt: str, key_hash: str, iterations: int, created_ms: int
    ) -> None:
        """Store a new key's row."""
        with self._store.transaction() as conn:
            conn.execute(
                api_keys_table.insert().values(
                    key_id=key_id,
                    name=name,
                    scope=scope,
                    salt=salt,
                    key_hash=key_hash,
                    iterations=iterations,
                    created_ms=created_ms,
                    revoked_ms=None,
                )
            )

    def get(self, key_id: str) -> Any:
        """The key's row (attributes named as the columns), or None."""
        with self._store.engine.connect() as conn:
            return conn.execute(self._get, {"key_id": key_id}).first()

    def list(self) -> list[tuple[str, str, str, int, int | None]]:
        """Every key, oldest first: (key id, scope, name, created_ms, revoked_ms)."""
        c = api_keys_table.c
        statement = select(c.key_id, c.scope, c.name, c.created_ms, c.revoked_ms).order_by(c.created_ms)
        with self._store.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(statement)]  # type: ignore[misc]

    def revoke(self, key_id: str, *, now_ms: int) -> bool:
        """Mark an active key revoked; False if no active key has this id."""
        c = api_keys_table.c
        with self._store.transaction() as conn:
            done = conn.execute(
                update(api_keys_table).where(c.key_id == key_id, c.revoked_ms.is_(None)).values(revoked_ms=now_ms)
            ).rowcount
        return bool(done)

    # -- dashboard sessions ---------------------------------------------------------------
    def add_session(self, token_hash: str, key_id: str, *, expires_ms: int, now_ms: int) -> None:
        """Remember a login (and forget the expired ones)."""
        c = sessions_table.c
        with self._store.transaction() as conn:
            conn.execute(delete(sessions_table).where(c.expires_ms < now_ms))
            conn.execute(sessions_table.insert().values(token_hash=token_hash, key_id=key_id, expires_ms=expires_ms))

    def session_key(self, token_hash: str, *, now_ms: int) -> str | None:
        """The key id of an unexpired login, or None."""
        c = sessions_table.c
        statement = select(c.key_id).where(c.token_hash == token_hash, c.expires_ms >= now_ms)
        with self._store.engine.connect() as conn:
            row = conn.execute(statement).first()
        return str(row[0]) if row else None

    def drop_session(self, token_hash: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.token_hash == token_hash))
