"""API keys: created once, stored only as salted PBKDF2 hashes, scoped read < write < admin.

A key looks like ``slm_<key id>_<secret>``. The key id is public (it is how a key is found,
listed and revoked); the whole key is hashed with PBKDF2-HMAC-SHA256 and a per-key salt,
so the database file never holds anything a client could present.

Verifying PBKDF2 on every request would cost more than a recommendation, so a verified key
is remembered in memory by a peppered SHA-256 fingerprint (never the key itself) and its row
re-read every ``recheck_seconds`` (1 s by default): a revoked key stops working within that,
in every process that serves.

Example:
    >>> from shoplm.store import Store
    >>> keys = KeyStore(Store.open("sqlite://"))
    >>> created = keys.create("read", name="storefront")
    >>> keys.verify(created.secret).scope, keys.verify("slm_nope_nope")
    ('read', None)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from shoplm.errors import InputError
from shoplm.store import Store

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[str, ...] = ("read", "write", "admin")
_RANK = {name: rank for rank, name in enumerate(SCOPES)}

#: PBKDF2 rounds. Keys carry 256 random bits, so the hash guards a leaked database file,
#: not a guessable password; the cost is paid once per key and process (then cached).
ITERATIONS = 120_000
KEY_PREFIX = "slm"


def scope_allows(have: str, need: str) -> bool:
    """True if a key of scope ``have`` may do what needs ``need`` (read < write < admin).

    Example:
        >>> scope_allows("admin", "write"), scope_allows("read", "write")
        (True, False)
    """
    return _RANK.get(have, -1) >= _RANK[need]


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    scope: str
    name: str
    created_ms: int
    revoked_ms: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_ms is None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is the whole key, shown once and never stored."""

    key: ApiKey
    secret: str


def hash_key(secret: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """PBKDF2-HMAC-SHA256 of a whole key, hex."""
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations).hex()


def parse_key_id(secret: str) -> str | None:
    """The key id inside a presented key, or None if it is not shaped like one of ours."""
    parts = secret.split("_", 2)  # the secret part may hold "_" itself
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


@dataclass
class _Verified:
    key: ApiKey
    key_hash: str
    checked: float


class KeyStore:
    """Create, list, revoke and verify API keys in the store's ``api_keys`` table."""

    def __init__(self, store: Store, *, recheck_seconds: float = 1.0, cache_size: int = 4096) -> None:
        self.store = store
        self.recheck_seconds = recheck_seconds
        self.cache_size = cache_size
        self._pepper = secrets.token_bytes(16)  # per process: fingerprints mean nothing elsewhere
        self._verified: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()

    # -- administration ---------------------------------------------------------------
    def create(self, scope: str, *, name: str = "", actor: str = "cli") -> CreatedKey:
        """Make a new key of ``scope``; the returned ``secret`` is the only copy of it.

        Args:
            scope: read, write or admin.
            name: a label: who uses the key.
            actor: who creates it (an admin key's id, or ``"cli"``), for the audit log.
        """
        if scope not in SCOPES:
            raise InputError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}", field="scope")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        salt = secrets.token_bytes(16)
        created = int(time.time() * 1000)
        self.store.api_keys.insert(
            key_id=key_id,
            name=name,
            scope=scope,
            salt=salt.hex(),
            key_hash=hash_key(secret, salt),
            iterations=ITERATIONS,
            created_ms=created,
        )
        self._audit(actor, "key_create", {"key": key_id, "scope": scope})
        return CreatedKey(ApiKey(key_id, scope, name, created), secret)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones too)."""
        return [ApiKey(*row) for row in self.store.api_keys.list()]

    def revoke(self, key_id: str, *, actor: str = "cli") -> bool:
        """Revoke a key by id; False if there is no active key of that id. Audited when done."""
        done = self.store.api_keys.revoke(key_id, now_ms=int(time.time() * 1000))
        with self._lock:
            self._verified = {f: v for f, v in self._verified.items() if v.key.key_id != key_id}
        if done:
            self._audit(actor, "key_revoke", {"key": key_id})
        return bool(done)

    def _audit(self, actor: str, action: str, details: dict[str, str]) -> None:
        # Key administration names no user: the entry needs no salted hash, hence no settings.
        self.store.audit.append(actor=actor, action=action, details=details, at_ms=int(time.time() * 1000))

    def rotate(self, key_id: str, *, actor: str = "cli") -> CreatedKey:
        """Replace an active key by a new one of the same scope and name; the old one stops working.

        Returns the new key (its ``secret`` shown once). A running service refuses the old key
        within ``recheck_seconds``.

        Raises:
            InputError: no active key has this id.
        """
        row = self._row(key_id)
        if row is None or row.revoked_ms is not None:
            raise InputError(f"no active key with id {key_id!r}", field="key_id")
        created = self.create(row.scope, name=row.name, actor=actor)
        self.revoke(key_id, actor=actor)
        self._audit(actor, "key_rotate", {"old": key_id, "new": created.key.key_id})
        return created

    # -- the request path -------------------------------------------------------------
    def verify(self, secret: str) -> ApiKey | None:
        """The active key ``secret`` is, or None (unknown, wrong, revoked)."""
        key_id = parse_key_id(secret)
        if key_id is None or len(secret) > 200:
            return None
        fingerprint = hashlib.sha256(self._pepper + secret.encode("utf-8")).digest()
        now = time.monotonic()
        cached = self._verified.get(fingerprint)
        if cached is not None and now - cached.checked < self.recheck_seconds:
            return cached.key
        row = self._row(key_id)
        if row is None or row.revoked_ms is not None:
            self._forget(fingerprint)
            return None
        if cached is not None and hmac.compare_digest(cached.key_hash, row.key_hash):
            # Verified before against this very hash: only the row needed a fresh look.
            cached.checked = now
            return cached.key
        if not hmac.compare_digest(hash_key(secret, bytes.fromhex(row.salt), row.iterations), row.key_hash):
            return None
        key = ApiKey(row.key_id, row.scope, row.name, row.created_ms, row.revoked_ms)
        with self._lock:
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[fingerprint] = _Verified(key, row.key_hash, now)
        return key

    def is_active(self, key_id: str) -> bool:
        """True if the key of this id exists and is not revoked (one indexed lookup)."""
        row = self._row(key_id)
        return row is not None and row.revoked_ms is None

    def _row(self, key_id: str):  # type: ignore[no-untyped-def]
        return self.store.api_keys.get(key_id)

    def _forget(self, fingerprint: bytes) -> None:
        with self._lock:
            self._verified.pop(fingerprint, None)


class SessionStore:
    """Dashboard logins: a random token in the cookie, only its hash in the store, never the API key.

    Kept in the store so that every worker process of the service (and every server on the
    same database) knows every login; a revoked key's sessions end with it.

    Example:
        >>> from shoplm.store import Store
        >>> store = Store.open("sqlite://")
        >>> keys, sessions = KeyStore(store), SessionStore(store, hours=1)
        >>> token = sessions.create(keys.create("read").key)
        >>> sessions.get(token).scope, sessions.get("forged")
        ('read', None)
    """

    def __init__(self, store: Store, hours: float, *, keys: KeyStore | None = None) -> None:
        self.store = store
        self.seconds = hours * 3600.0
        self.keys = keys or KeyStore(store)

    def create(self, key: ApiKey) -> str:
        """A new login of ``key``; the returned token goes in the cookie."""
        token = secrets.token_urlsafe(32)
        now_ms = int(time.time() * 1000)
        self.store.api_keys.add_session(
            _token_hash(token), key.key_id, expires_ms=now_ms + int(self.seconds * 1000), now_ms=now_ms
        )
        return token

    def get(self, token: str | None) -> ApiKey | None:
        """The key logged in with ``token``: None if unknown, expired, or the key was revoked."""
        if not token or len(token) > 200:
            return None
        key_id = self.store.api_keys.session_key(_token_hash(token), now_ms=int(time.time() * 1000))
        if key_id is None:
            return None
        row = self.store.api_keys.get(key_id)
        if row is None or row.revoked_ms is not None:
            return None
        return ApiKey(row.key_id, row.scope, row.name, row.created_ms, row.revoked_ms)

    def delete(self, token: str | None) -> None:
        """Log out."""
        if token:
            self.store.api_keys.drop_session(_token_hash(token))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
