"""Rotating the pseudonymization key without losing anyone's history: the key chain.

HMAC cannot be undone, and the store holds no raw user id, so stored pseudonyms cannot be
recomputed from scratch under a new key. Re-keying hashes them once more instead:

- a new random key ``k_n`` is drawn; every stored pseudonym ``p`` becomes ``HMAC(k_n, p)``
  (users, events, orders, reviews, conversations, scores, candidate lists; the email and
  phone digests likewise; analytics reports and alerts that quote pseudonyms are rewritten),
  all in one transaction;
- the key file (``data_dir/secret.key``) becomes the chain ``k_0 .. k_n``, one key per line,
  oldest first. :class:`~shoplm.ingest.pseudonymize.Pseudonymizer` applies the keys in turn,
  so a raw id arriving later maps to ``HMAC(k_n, HMAC(k_0, id))``: the same pseudonym its
  re-keyed history carries, and the user's new events join their old ones.

What it buys: stored pseudonyms no longer match anything computed with the old keys alone, so
a leaked old key (or a copy of old pseudonyms: logs, exports, backups) no longer links to the
live store. The chain must stay secret as a whole, like the single key before.

Order of the steps, for a crash in the middle: the new chain is written to
``secret.key.pending`` first, then the store's transaction commits, then the pending file
replaces ``secret.key``. A leftover pending file therefore means the transaction may have
committed: :func:`rekey` refuses to start until an operator checks (see docs/privacy.md).

Running servers keep the key they started with: restart them after re-keying.

Example:
    >>> import tempfile, pandas as pd
    >>> from shoplm.config import Settings
    >>> from shoplm.ingest.pseudonymize import Pseudonymizer
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp())
    >>> store = Store.open(settings.database_url)
    >>> before = Pseudonymizer(settings.hmac_key).user("U1")
    >>> _ = store.upsert("events", pd.DataFrame({"event_id": ["e1"], "user_id": [before], "item_id": ["i1"],
    ...     "event_type": ["view"], "ts_ms": [1], "scene": [""], "query": [""], "session_id": [""],
    ...     "suspected_bot": [False]}))
    >>> rekey(store, settings).users
    1
    >>> after = Pseudonymizer(Settings(data_dir=settings.data_dir).hmac_key).user("U1")
    >>> after != before, store.erasure.counts(after)["events"]
    (True, 1)
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoplm.app.audit import record
from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store import Store

KEY_FILE = "secret.key"
_PSEUDONYM = re.compile(r"\bu_[0-9a-f]{24}\b")


@dataclass(frozen=True)
class RekeyResult:
    """What :func:`rekey` changed."""

    users: int
    rows: dict[str, int]
    generation: int  # keys in the chain now


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def rekey(store: Store, settings: Settings, *, actor: str = "cli") -> RekeyResult:
    """Re-key every stored pseudonym under a new key and extend the key chain; audited.

    Args:
        store: the shop's store.
        settings: the shop's settings (the key must be the key file in ``data_dir``).
        actor: the acting API key's id, or ``"cli"``.

    Returns:
        How many users were re-keyed, rows changed per table, and the chain's length.

    Raises:
        InputError: the key is set in the settings (rotate it there: see docs/privacy.md), or a
            previous re-keying was interrupted.
    """
    if settings.pseudonymization_key.get_secret_value():
        raise InputError(
            "the pseudonymization key is set in the settings (pseudonymization_key): re-keying rewrites the "
            f"key file {key_file(settings)}; move the key there first (see docs/privacy.md)"
        )
    path = key_file(settings)
    pending = path.with_name(path.name + ".pending")
    if pending.exists():
        raise InputError(
            f"{pending} exists: an earlier re-keying stopped midway. If the store holds the new pseudonyms, "
            f"move it over {path.name}; otherwise delete it (see docs/privacy.md)"
        )
    _ = settings.hmac_key  # makes the key file if this shop has none yet
    chain = [line for line in path.read_bytes().strip().split(b"\n") if line]  # the file, not a cached copy
    new_key = secrets.token_hex(32).encode()
    step = Pseudonymizer(new_key)
    users = {old: "u_" + step.digest("user", old.removeprefix("u_")) for old in store.erasure.user_ids()}
    emails, phones = store.erasure.hashes()
    email_map = {old: step.digest("email", old, 32) for old in emails}
    phone_map = {old: step.digest("phone", old, 32) for old in phones}

    def rewrite(text: str) -> str:
        return _PSEUDONYM.sub(lambda m: users.get(m.group(0), m.group(0)), text)

    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\n".join([*chain, new_key]) + b"\n")
    rows = store.erasure.rename_users(users, emails=email_map, phones=phone_map, rewrite_text=rewrite)
    os.replace(pending, path)
    rows["models"] = _rekey_models(settings, users, rewrite)
    record(
        store,
        settings,
        actor=actor,
        action="rekey",
        details={"users": len(users), "generation": len(chain) + 1, "rows": sum(rows.values())},
    )
    return RekeyResult(users=len(users), rows=rows, generation=len(chain) + 1)


def _rekey_models(settings: Settings, users: dict[str, str], rewrite: Callable[[str], str]) -> int:
    """Saved models holding pseudonyms (per-user rows) get the new ones; a model that fails to load is flagged."""
    from shoplm.app.erasure import (
        flag_for_retraining,
        model_dirs,
        read_model_files,
        version_of,
        write_model_files,
    )

    changed, broken = 0, []
    for model_dir in model_dirs(settings):
        meta, strings, numeric = read_model_files(model_dir)
        renamed = {
            k: (np.vectorize(lambda v: users.get(v, v), otypes=[v.dtype])(v) if v.dtype.kind == "U" and v.size else v)
            for k, v in strings.items()
        }
        new_meta = json.loads(rewrite(json.dumps(meta, ensure_ascii=False)))
        if new_meta == meta and all(np.array_equal(renamed[k], strings[k]) for k in strings):
            continue
        if write_model_files(model_dir, new_meta, renamed, numeric):
            changed += 1
        else:
            broken.append(version_of(settings, model_dir))
    if broken:
        flag_for_retraining(settings, broken, forgotten=False)
    return changed
