"""Backup and restore of the store's database, consistent while writers run.

* **SQLite**: SQLite's online backup API (:meth:`sqlite3.Connection.backup`) copies every page in
  one step under a read transaction, so the copy is the database as of one commit, while the
  server goes on writing (WAL mode: readers do not block writers). The backup file is itself a
  SQLite database. Restoring copies it back the same way, into the live file.
* **PostgreSQL**: ``pg_dump -Fc`` (one snapshot transaction: consistent while writers run) and
  ``pg_restore --clean --if-exists --single-transaction`` (all of it or nothing). The password
  travels in ``PGPASSWORD``, never on a command line others can read.

Only the database is backed up. Models, embeddings and caches under ``data_dir`` are made again
from it (``shoplm train``, ``shoplm encode``, the analytics jobs). The pseudonymization key
(``data_dir/secret.key`` unless set in ``pseudonymization_key``) is not in the backup, on
purpose, since a backup file travels to places a secret should not: keep a copy of it once,
somewhere safe; without it new events' user ids no longer match the restored ones.

Example:
    >>> import tempfile, pathlib
    >>> from shoplm.store import Store
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> store = Store.open(f"sqlite:///{folder / 'shop.sqlite'}")
    >>> backup_store(store, folder / "shop.backup").backend
    'sqlite'
    >>> restore_store(store, folder / "shop.backup").backend
    'sqlite'
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, make_url

from shoplm.errors import InputError, ShoplmError

if TYPE_CHECKING:
    from shoplm.store.database import Store

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: A table every shoplm database has: a SQLite file without it is not a shoplm backup.
_REQUIRED_TABLE = "events"


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore did: the file, the database kind, its size and the time taken."""

    path: Path
    backend: str
    bytes: int
    seconds: float


def backup_store(store: Store, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Write a consistent copy of the store's database to ``target`` (made whole, then renamed).

    Args:
        store: the open store (SQLite file or PostgreSQL).
        target: the backup file to write.
        overwrite: replace an existing ``target`` (default: refuse).

    Returns:
        The file written, its size and the seconds taken.

    Raises:
        InputError: ``target`` exists (without ``overwrite``), or the store is in memory.
        ShoplmError: ``pg_dump`` failed (its message is included).
    """
    target = Path(target).expanduser()
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists already: choose another file (or --force to replace it)")
    if target.is_dir():
        raise InputError(f"{target} is a directory: name a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    started = time.perf_counter()
    try:
        if store.backend == "sqlite":
            _sqlite_backup(_sqlite_path(store), partial)
        elif store.backend == "postgresql":
            _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(partial)], store)
        else:  # pragma: no cover - Store.open accepts only these two
            raise ShoplmError(f"no backup for {store.backend} databases")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, store.backend, target.stat().st_size, round(time.perf_counter() - started, 3))


def restore_store(store: Store, source: Path) -> BackupResult:
    """Replace the store's database with the backup in ``source`` (checked first: nothing changes if it is bad).

    Stop the server (and ``shoplm scheduler``) first: a restore replaces every table under them.

    Args:
        store: the open store to restore into (its kind must match the backup's).
        source: a file written by :func:`backup_store`.

    Raises:
        InputError: ``source`` is missing, not a backup, corrupt, or of the other database kind.
    """
    source = Path(source).expanduser()
    if not source.is_file():
        raise InputError(f"{source}: no such backup file")
    with source.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    started = time.perf_counter()
    if head.startswith(SQLITE_MAGIC):
        if store.backend != "sqlite":
            raise InputError(f"{source} is a SQLite backup; the store is {store.backend}: restore it into SQLite")
        _check_sqlite_backup(source)
        _sqlite_restore(source, _sqlite_path(store), store)
    elif head.startswith(PG_DUMP_MAGIC):
        if store.backend != "postgresql":
            raise InputError(f"{source} is a PostgreSQL dump; the store is {store.backend}: restore it into PostgreSQL")
        try:
            _run(["pg_restore", "--list", str(source)], store, database=False)
        except ShoplmError as exc:
            raise InputError(f"{source} is not a readable PostgreSQL dump: {exc}") from None
        store.engine.dispose()  # idle pooled connections would hold no locks, but need not linger either
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(source)], store)
    else:
        raise InputError(f"{source} is not a shoplm backup (neither a SQLite database nor a pg_dump file)")
    return BackupResult(source, store.backend, source.stat().st_size, round(time.perf_counter() - started, 3))


# -- SQLite ------------------------------------------------------------------------------------
def _sqlite_path(store: Store) -> Path:
    database = store.engine.url.database
    if not database or database == ":memory:":
        raise InputError("the store is in memory: there is no file to back up or restore")
    return Path(database)


def _sqlite_backup(database: Path, target: Path) -> None:
    source = sqlite3.connect(database, timeout=30)
    destination = sqlite3.connect(target)
    try:
        # pages=-1: every page in one step, under one read transaction (a consistent snapshot);
        # copied step by step, a write between steps would restart the copy.
        source.backup(destination, pages=-1)
    finally:
        destination.close()
        source.close()


def _check_sqlite_backup(path: Path) -> None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            check = connection.execute("PRAGMA quick_check").fetchall()
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is corrupt: {exc}") from None
    if check != [("ok",)]:
        problems = "; ".join(str(r[0]) for r in check[:3])
        raise InputError(f"{path} is corrupt: {problems}")
    if _REQUIRED_TABLE not in tables:
        raise InputError(f"{path} is a SQLite database but not a shoplm store (no {_REQUIRED_TABLE!r} table)")


def _sqlite_restore(source: Path, database: Path, store: Store) -> None:
    backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    live = sqlite3.connect(database, timeout=30)
    try:
        # Into the live file through SQLite itself: its lock keeps other connections out while
        # the pages are copied, and they see the restored database afterwards.
        with store._writer_lock():
            backup.backup(live, pages=-1)
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        live.close()
        backup.close()
    store.engine.dispose()  # pooled connections start afresh on the restored file


# -- PostgreSQL --------------------------------------------------------------------------------
def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore, and the password as an environment variable."""
    options = ["--host", url.host or "localhost", "--port", str(url.port or 5432)]
    if url.username:
        options += ["--username", url.username]
    env = {"PGPASSWORD": url.password} if url.password else {}
    return options, env


def _run(command: list[str], store: Store, *, database: bool = True) -> None:
    """Run a PostgreSQL client against the store's server; ShoplmError with its message on failure."""
    program = shutil.which(command[0])
    if program is None:
        raise ShoplmError(f"{command[0]} is not installed (the PostgreSQL client tools: apt install postgresql-client)")
    url = make_url(store.engine.url.render_as_string(hide_password=False))
    options, env = _libpq(url)
    args = [program, *command[1:]]
    if database:
        args[1:1] = [*options, "--dbname", url.database or "postgres"]
    try:
        done = subprocess.run(
            args, env={**os.environ, **env}, capture_output=True, text=True, timeout=24 * 3600, check=False
        )
    except OSError as exc:
        raise ShoplmError(f"{command[0]} could not start: {exc}") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ShoplmError(f"{command[0]} failed: {' / '.join(message[-3:]) or f'exit {done.returncode}'}")
