"""The right to be forgotten and the right of access: remove, or export, everything stored about one user.

:func:`forget_user` removes the user from every place shoplm keeps data under the data directory:

- the store: every row naming them (events, orders and their lines, reviews, conversations with
  their messages and chat transcripts, the profile, scores, precomputed candidate lists, alerts
  about their orders) through ``store.erasure``; analytics reports listing them are rewritten
  without them; then the database is compacted (WAL checkpoint + VACUUM), so the deleted rows'
  bytes leave the files too;
- files: rejects files and the demo's source files (CSV, JSON lines, Parquet, JSON) are
  rewritten without the user's rows; the embedding caches lose the vectors of their texts;
- models: a saved model holding a row of the user (a string array naming them, with the arrays
  aligned to it) is rewritten without that row, its meta.json hashes renewed so it still loads;
  one that cannot be rewritten is removed from its version. Every kept model version and
  analytics model trained while the user's data was in the store still carries what it learned
  from them, spread over its weights: those are flagged for retraining (``RETRAIN.json`` under
  the models directory, shown by ``shoplm privacy-status``). Serving excludes the user at once
  all the same: a running server reads each user's history from the store at request time and
  keys its answer cache by that history, so with the rows gone the user gets a visitor's answers.

Every call appends an audit entry naming the user only by a salted hash (:mod:`shoplm.app.audit`).

Example:
    >>> import tempfile, pandas as pd
    >>> from shoplm.config import Settings
    >>> from shoplm.ingest.pseudonymize import Pseudonymizer
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp(), pseudonymization_key="k")
    >>> store = Store.open(settings.database_url)
    >>> who = Pseudonymizer(b"k").user("U1")
    >>> _ = store.upsert("events", pd.DataFrame({"event_id": ["e1"], "user_id": [who], "item_id": ["i1"],
    ...     "event_type": ["view"], "ts_ms": [1], "scene": [""], "query": [""], "session_id": [""],
    ...     "suspected_bot": [False]}))
    >>> export_user(store, settings, "U1")["tables"]["events"][0]["item_id"]
    'i1'
    >>> forget_user(store, settings, "U1").rows["events"], store.count("events")
    (1, 0)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.app.audit import record
from shoplm.app.erasure_files import (
    Matcher,
    data_files,
    drop_npz_rows,
    matching_lines,
    rewrite_without,
    scrub_json_text,
)
from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import ModelFileError, NotFoundError
from shoplm.estimator import ARRAYS_FILE, META_FILE, STRINGS_FILE, Estimator
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store import Store
from shoplm.store.erasure import discard_cached_vectors, dumps_rows

#: What a stored pseudonym looks like (``Pseudonymizer.user``).
PSEUDONYM_RE = re.compile(r"u_[0-9a-f]{24}")
#: The flags of model versions and analytics models to retrain, under the models directory.
RETRAIN_FILE = "RETRAIN.json"
#: User texts shorter than this are not searched for in files: too likely to be someone else's too.
MIN_TEXT_NEEDLE = 12


@dataclass(frozen=True)
class Subject:
    """The user acted on: their pseudonym, their raw id if given, and what to look for in files."""

    pseudonym: str
    raw_id: str | None
    texts: tuple[str, ...] = ()
    #: ids of the user's own records (reviews, orders, conversations, messages): rows keyed by
    #: them elsewhere (review embeddings) are theirs too
    record_ids: frozenset[str] = frozenset()
    #: texts of the user that someone else wrote too ("thanks!"): their cached vectors go, but
    #: they neither identify the user nor are searched for in files
    shared_texts: tuple[str, ...] = ()

    def matcher(self) -> Matcher:
        """How the user is recognized in files, reports and models (see :class:`Matcher`)."""
        return Matcher(self.raw_id, self.pseudonym, tuple(t for t in self.texts if len(t) >= MIN_TEXT_NEEDLE))

    def needles(self) -> list[bytes]:
        """The byte strings that must not remain on disk once the user is forgotten.

        Each in UTF-8 and in UTF-32-LE (how numpy stores string arrays, e.g. in a model's
        ``strings.npz``); the raw id is matched as a whole token by :func:`what_files_hold`.
        """
        values = [self.pseudonym, *(t for t in self.texts if len(t) >= MIN_TEXT_NEEDLE)]
        return [v.encode(codec) for v in values for codec in ("utf-8", "utf-32-le")]

    def raw_patterns(self) -> list[re.Pattern[bytes]]:
        """The raw id as a whole token (``U1`` is not inside ``U10``), in UTF-8 and UTF-32-LE."""
        if not self.raw_id:
            return []
        utf8 = re.escape(self.raw_id.encode())
        utf32 = re.escape(self.raw_id.encode("utf-32-le"))
        word, word32 = rb"[A-Za-z0-9_]", rb"[A-Za-z0-9_]\x00\x00\x00"
        return [
            re.compile(rb"(?<!" + word + rb")" + utf8 + rb"(?!" + word + rb")"),
            re.compile(rb"(?<!" + word32 + rb")" + utf32 + rb"(?!" + word32 + rb")"),
        ]


@dataclass
class ForgetReport:
    """What :func:`forget_user` removed. Holds no user id: it may be printed or logged."""

    rows: dict[str, int]
    files: list[str] = field(default_factory=list)
    models_rewritten: list[str] = field(default_factory=list)
    models_removed: list[str] = field(default_factory=list)
    flagged_for_retraining: list[str] = field(default_factory=list)
    cached_vectors: int = 0
    audit_entry: int = 0
    #: False if a reader held SQLite's write-ahead log throughout: deleted bytes may stay in it
    #: until the next checkpoint (``--verify`` then names the file)
    compacted: bool = True
    residue: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "files": self.files,
            "models_rewritten": self.models_rewritten,
            "models_removed": self.models_removed,
            "flagged_for_retraining": self.flagged_for_retraining,
            "cached_vectors": self.cached_vectors,
            "audit_entry": self.audit_entry,
            "compacted": self.compacted,
            "residue": self.residue,
        }


def resolve_user(store: Store, settings: Settings, user: str, *, pseudonymous: bool = False) -> Subject:
    """The stored user of the shop's id ``user`` (or of the pseudonym ``user``).

    A value shaped like a pseudonym that matches no raw id is taken as a pseudonym: shops that
    send already pseudonymous ids, and admins who only have what the API showed them, can name
    a user that way too.

    Raises:
        NotFoundError: the store holds nothing of the user (code ``user_not_found``).
    """
    user = str(user).strip()
    if not user:
        raise NotFoundError("the user id is empty", code="user_not_found")
    pseudonym = user if pseudonymous else Pseudonymizer(settings.hmac_key).user(user)
    raw: str | None = None if pseudonymous else user
    counts = store.erasure.counts(pseudonym)
    looks_pseudonymous = not pseudonymous and PSEUDONYM_RE.fullmatch(user) is not None
    if not any(counts.values()) and looks_pseudonymous and any(store.erasure.counts(user).values()):
        pseudonym, raw, counts = user, None, store.erasure.counts(user)
    if not any(counts.values()):
        raise NotFoundError(f"no stored data of user {user!r}", code="user_not_found")
    rows = store.erasure.rows(pseudonym)
    record_ids = {
        str(row[key])
        for table, key in (("reviews", "review_id"), ("orders", "order_id"), ("messages", "message_id"))
        for row in rows.get(table, [])
    } | {str(row["conversation_id"]) for row in rows.get("conversations", [])}
    texts = list(dict.fromkeys(store.erasure.texts(pseudonym)))
    shared = store.erasure.texts_of_others(pseudonym, texts)
    return Subject(
        pseudonym,
        raw,
        tuple(t for t in texts if t not in shared),
        frozenset(record_ids),
        tuple(t for t in texts if t in shared),
    )


# -- right of access -------------------------------------------------------------------------
def export_user(
    store: Store, settings: Settings, user: str, *, actor: str = "cli", pseudonymous: bool = False
) -> dict[str, Any]:
    """Everything stored about the user, as one JSON-able document (and an audit entry).

    Args:
        store: the shop's store.
        settings: the shop's settings.
        user: the shop's user id (or a pseudonym, see :func:`resolve_user`).
        actor: the acting API key's id, or ``"cli"``.
        pseudonymous: ``user`` is the stored pseudonym.

    Returns:
        ``user_id``, ``pseudonymous_id``, ``exported_at``, ``tables`` (table -> rows, JSON
        columns parsed) and ``files`` (data-directory files with rows about the user -> those rows).

    Raises:
        NotFoundError: nothing is stored of the user.
    """
    subject = resolve_user(store, settings, user, pseudonymous=pseudonymous)
    tables = json.loads(dumps_rows(store.erasure.rows(subject.pseudonym)))
    matcher = subject.matcher()
    files: dict[str, list[str]] = {}
    for path in data_files(settings):
        lines = matching_lines(path, matcher)
        if lines:
            files[str(path.relative_to(settings.data_dir))] = lines
    record(
        store,
        settings,
        actor=actor,
        action="export",
        user=subject.raw_id or subject.pseudonym,
        pseudonymous=subject.raw_id is None,
        details={"rows": sum(len(rows) for rows in tables.values()), "files": len(files)},
    )
    return {
        "user_id": subject.raw_id,
        "pseudonymous_id": subject.pseudonym,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tables": {name: rows for name, rows in tables.items() if rows},
        "files": files,
    }


# -- right to be forgotten -------------------------------------------------------------------
def forget_user(
    store: Store,
    settings: Settings,
    user: str,
    *,
    actor: str = "cli",
    pseudonymous: bool = False,
    verify: bool = False,
) -> ForgetReport:
    """Remove the user from the store, the files, the caches and every kept model; audit it.

    Args:
        store: the shop's store.
        settings: the shop's settings.
        user: the shop's user id (or a pseudonym, see :func:`resolve_user`).
        actor: the acting API key's id, or ``"cli"``.
        pseudonymous: ``user`` is the stored pseudonym.
        verify: afterwards, search the bytes of every file under the data directory for the
            user's id, pseudonym and texts; the files still holding any are in ``residue``.

    Returns:
        What was removed, per place (no user id in it).

    Raises:
        NotFoundError: nothing is stored of the user; then nothing is changed.
    """
    subject = resolve_user(store, settings, user, pseudonymous=pseudonymous)
    matcher = subject.matcher()
    rows = store.erasure.delete_user(
        subject.pseudonym, rewrite_report=lambda body: scrub_json_text(body, matcher.value)
    )
    report = ForgetReport(rows={name: n for name, n in rows.items() if n})
    for path in data_files(settings):
        if rewrite_without(path, matcher):
            report.files.append(str(path.relative_to(settings.data_dir)))
    keys = [
        hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in (*subject.texts, *subject.shared_texts)
    ]
    for cache in sorted((settings.cache_dir / "embeddings").glob("*.sqlite")) if keys else []:
        report.cached_vectors += discard_cached_vectors(cache, keys)
    for vectors in sorted((settings.data_dir / "embeddings").glob("*.npz")):
        if drop_npz_rows(vectors, subject.record_ids | {subject.pseudonym}):
            report.files.append(str(vectors.relative_to(settings.data_dir)))
    _forget_in_models(settings, matcher, report)
    store.erasure.compact()
    report.audit_entry = record(
        store,
        settings,
        actor=actor,
        action="forget",
        user=subject.raw_id or subject.pseudonym,
        pseudonymous=subject.raw_id is None,
        details={
            "rows": sum(report.rows.values()),
            "files": len(report.files),
            "models_rewritten": len(report.models_rewritten),
            "flagged_for_retraining": len(report.flagged_for_retraining),
        },
    )
    report.compacted = store.erasure.compact()  # the audit insert went through the WAL as well
    if verify:
        report.residue = [
            f"{path.relative_to(settings.data_dir)} ({', '.join(held)})"
            for path, held in what_files_hold(settings.data_dir, subject).items()
        ]
    return report


def what_files_hold(root: Path, subject: Subject) -> dict[Path, list[str]]:
    """Each file under ``root`` holding something of the user, with what: "raw id", "pseudonym", "text".

    The kinds tell a real residue from a chance one: a short numeric raw id alone in a binary
    file is usually another number (a row index inside an event id, say), a pseudonym never is.
    """
    pseudonym = [subject.pseudonym.encode(codec) for codec in ("utf-8", "utf-32-le")]
    kinds = [("pseudonym", pseudonym), ("text", [n for n in subject.needles() if n not in pseudonym])]
    patterns = subject.raw_patterns()
    found: dict[Path, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        held = ["raw id"] if any(p.search(data) for p in patterns) else []
        held += [kind for kind, needles in kinds if any(n in data for n in needles)]
        if held:
            found[path] = held
    return found


# -- models ----------------------------------------------------------------------------------
def model_dirs(settings: Settings) -> list[Path]:
    root = settings.models_dir
    return sorted(meta.parent for meta in root.rglob(META_FILE)) if root.is_dir() else []


def version_of(settings: Settings, model_dir: Path) -> str:
    """The retrainable unit a model belongs to: ``versions/<name>`` or ``analytics/<job>``."""
    parts = model_dir.relative_to(settings.models_dir).parts
    return "/".join(parts[:2]) if len(parts) >= 2 else parts[0]


def _forget_in_models(settings: Settings, matcher: Matcher, report: ForgetReport) -> None:
    units: set[str] = set()
    for model_dir in model_dirs(settings):
        units.add(version_of(settings, model_dir))
        if not model_names_user(model_dir, matcher):
            continue
        relative = str(model_dir.relative_to(settings.models_dir))
        if drop_user_rows(model_dir, matcher):
            report.models_rewritten.append(relative)
        else:
            shutil.rmtree(model_dir)
            report.models_removed.append(relative)
    live = ModelRegistry(settings.models_dir).current()
    changed = report.models_rewritten + report.models_removed
    if live is not None and any(path.startswith(f"versions/{live}/") for path in changed):
        units.add(f"versions/{republish_live(settings)}")
    if units:
        report.flagged_for_retraining = flag_for_retraining(settings, sorted(units))


def republish_live(settings: Settings) -> str:
    """Publish a copy of the live model version as a new version; returns its name.

    Running servers reload when the registry's pointer changes (they poll it), not when a
    version's files change under them: a model rewritten without a user in the live version
    reaches them by this new version within ``server.reload_seconds``, and they drop the old
    objects (and every cached answer) with it.
    """
    registry = ModelRegistry(settings.models_dir)
    live = registry.current_dir()
    if live is None:
        raise ModelFileError(f"no live model version in {settings.models_dir}")
    target = registry.new_version()
    for model_dir in sorted(p for p in live.iterdir() if p.is_dir() and (p / META_FILE).is_file()):
        shutil.copytree(model_dir, target / model_dir.name)
    registry.publish(target.name)
    return target.name


def model_names_user(model_dir: Path, matcher: Matcher) -> bool:
    """True if a saved model's meta.json or string arrays name or quote the user."""
    if matcher.mentions((model_dir / META_FILE).read_text(encoding="utf-8")):
        return True
    if not (model_dir / STRINGS_FILE).is_file():
        return False
    with np.load(model_dir / STRINGS_FILE, allow_pickle=False) as npz:
        return any(matcher.value(str(value)) for name in npz.files for value in np.ravel(npz[name]))


def read_model_files(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A saved model's meta.json, string arrays and numeric arrays, as written by :meth:`Estimator.save`."""
    from safetensors.numpy import load_file

    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    strings: dict[str, np.ndarray] = {}
    if (model_dir / STRINGS_FILE).is_file():
        with np.load(model_dir / STRINGS_FILE, allow_pickle=False) as npz:
            strings = {k: npz[k] for k in npz.files}
    numeric = load_file(str(model_dir / ARRAYS_FILE)) if (model_dir / ARRAYS_FILE).is_file() else {}
    return meta, strings, numeric


def write_model_files(
    model_dir: Path, meta: dict[str, Any], strings: dict[str, np.ndarray], numeric: dict[str, np.ndarray]
) -> bool:
    """Replace a saved model's files (meta.json with the new files' SHA-256); True if it loads afterwards.

    The new files are written and loaded in a directory beside the model, which then takes its
    place; if they do not load, nothing is changed.
    """
    from safetensors.numpy import save_file

    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    try:
        files: dict[str, str] = {}
        if numeric:
            save_file({k: np.ascontiguousarray(v) for k, v in numeric.items()}, str(staging / ARRAYS_FILE))
            files[ARRAYS_FILE] = _sha256(staging / ARRAYS_FILE)
        if strings:
            np.savez(staging / STRINGS_FILE, **strings)
            files[STRINGS_FILE] = _sha256(staging / STRINGS_FILE)
        meta = {**meta, "files": files}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        Estimator.load(staging)
    except (ModelFileError, ValueError, KeyError, TypeError, IndexError):
        shutil.rmtree(staging, ignore_errors=True)
        return False
    old = model_dir.with_name(f".{model_dir.name}.replaced-{os.getpid()}")
    os.replace(model_dir, old)
    os.replace(staging, model_dir)
    shutil.rmtree(old)
    return True


def drop_user_rows(model_dir: Path, matcher: Matcher) -> bool:
    """Rewrite a saved model without the rows of a user; True if it still loads afterwards.

    A row is a position of a string array (``strings.npz``) whose value names the user; that
    position is dropped from every array of the same length (the factors, biases and counts
    aligned to it), and meta.json gets the new files' hashes. A model whose JSON state names
    the user cannot be rewritten this way (False, nothing changed).
    """
    meta, strings, numeric = read_model_files(model_dir)
    if matcher.mentions(json.dumps(meta.get("state", {}), ensure_ascii=False)):
        return False
    drops: dict[int, np.ndarray] = {}
    for values in strings.values():
        if values.ndim == 1 and len(values):
            hit = np.fromiter((matcher.value(str(v)) for v in values), dtype=bool, count=len(values))
            if hit.any():
                drops[len(values)] = drops.get(len(values), np.zeros(len(values), dtype=bool)) | hit
    if not drops:
        return False

    def without(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: (v[~drops[len(v)]] if v.ndim >= 1 and len(v) in drops else v) for k, v in arrays.items()}

    return write_model_files(model_dir, meta, without(strings), without(numeric))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flag_for_retraining(settings: Settings, units: Iterable[str], *, forgotten: bool = True) -> list[str]:
    """Mark model versions / analytics models for retraining; returns every flagged one.

    Args:
        settings: where the models are.
        units: ``versions/<name>`` or ``analytics/<job>`` entries (see :func:`version_of`).
        forgotten: the reason is a forgotten user (counted per unit); False: a model re-keying
            could not rewrite (``stale_pseudonyms``).

    Flags name versions only (never a user). A version published later is trained without
    the user and carries no flag; :func:`retraining_status` tells whether the live one does.
    """
    path = settings.models_dir / RETRAIN_FILE
    flags = _read_flags(path)
    now = int(time.time() * 1000)
    for unit in units:
        entry = flags.setdefault(unit, {"first_flagged_ms": now, "forgotten_users": 0})
        if forgotten:
            entry["forgotten_users"] = int(entry.get("forgotten_users", 0)) + 1
        else:
            entry["stale_pseudonyms"] = True
        entry["last_flagged_ms"] = now
    existing = {version_of(settings, d) for d in model_dirs(settings)}  # pruned versions need no retraining
    flags = {unit: entry for unit, entry in flags.items() if unit in existing}
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_text(path, json.dumps(flags, indent=1, sort_keys=True))
    return sorted(flags)


def retraining_status(settings: Settings) -> dict[str, Any]:
    """The flagged versions and whether the live recommender version is one of them.

    Returns:
        ``flagged`` (unit -> when flagged, how many forgotten users), ``live_version`` and
        ``live_needs_retraining``.
    """
    flags = _read_flags(settings.models_dir / RETRAIN_FILE)
    existing = {version_of(settings, d) for d in model_dirs(settings)}
    flags = {unit: entry for unit, entry in flags.items() if unit in existing}
    live = ModelRegistry(settings.models_dir).current()
    return {
        "flagged": flags,
        "live_version": live,
        "live_needs_retraining": live is not None and f"versions/{live}" in flags,
    }


def _read_flags(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text())
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _replace_text(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(text)
    os.replace(staging, path)
