"""Writing the audit log: who did which admin action, when, and a salted one-way hash of the user.

The hash is HMAC-SHA256 of the shop's user id under the audit salt: the log names nobody, yet
whoever holds the salt can check whether a given user was forgotten or exported (hash the id,
look it up). The salt is ``Settings.audit_salt`` or, when that is empty, the file
``audit-salt.key`` made once in the data directory (mode 0600); a shop running several servers
on one PostgreSQL database sets ``audit_salt`` so all of them write the same hashes.

Example:
    >>> import tempfile
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp(), audit_salt="pepper")
    >>> store = Store.open("sqlite://")
    >>> entry = record(store, settings, actor="cli", action="export", user="U1", details={"rows": 2})
    >>> found = store.audit.entries()[0]
    >>> found["subject_hash"] == subject_hash(settings, "U1") != "U1", found["details"]
    (True, {'rows': 2})
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from typing import Any

from shoplm.config import Settings
from shoplm.store import Store

SALT_FILE = "audit-salt.key"


def audit_salt(settings: Settings) -> bytes:
    """The audit salt: from settings, else a random one kept in ``data_dir/audit-salt.key``."""
    configured = settings.audit_salt.get_secret_value()
    if configured:
        return configured.encode("utf-8")
    path = settings.data_dir / SALT_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: read theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def subject_hash(settings: Settings, user: str, *, pseudonymous: bool = False) -> str:
    """The salted one-way hash of a user for the audit log (64 hex characters).

    Args:
        settings: where the salt is.
        user: the shop's user id (or, with ``pseudonymous``, the stored pseudonym).
        pseudonymous: ``user`` is a pseudonym; hashed in its own namespace so it never equals a raw id's hash.
    """
    namespace = "pseudonym" if pseudonymous else "user"
    return hmac.digest(audit_salt(settings), f"{namespace}\x1f{user}".encode(), "sha256").hex()


def record(
    store: Store,
    settings: Settings,
    *,
    actor: str,
    action: str,
    user: str | None = None,
    pseudonymous: bool = False,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry to the audit log; returns its id.

    Args:
        store: the shop's store.
        settings: the shop's settings (the salt).
        actor: the acting API key's id, or ``"cli"``.
        action: see :data:`shoplm.store.audit.AUDIT_ACTIONS`.
        user: the user acted on, if any (only its salted hash is written).
        pseudonymous: ``user`` is a pseudonym, not the shop's id.
        details: counts and names that identify no user.
    """
    hashed = subject_hash(settings, user, pseudonymous=pseudonymous) if user else ""
    return store.audit.append(
        actor=actor, action=action, subject_hash=hashed, details=details, at_ms=int(time.time() * 1000)
    )
