"""The store: one class over SQLite (embedded default, WAL mode) or PostgreSQL, by URL.

Writes are idempotent upserts keyed by primary key plus a content hash, so feeding the same
data twice adds nothing; reads come back as pandas DataFrames (or Arrow tables) for training.
Everything a table family needs beyond that (a user's live history, an order with its lines,
a conversation's state, an API key's row) is a method of its repository, reached as
``store.events``, ``store.items``, ``store.users``, ``store.orders``, ``store.conversations``
and ``store.api_keys``: SQL lives in this package only.

Example:
    >>> import pandas as pd
    >>> store = Store.open("sqlite://")              # in-memory, for the example
    >>> frame = pd.DataFrame({"event_id": ["e1"], "user_id": ["u1"], "item_id": ["i1"], "event_type": ["view"],
    ...                       "ts_ms": [1_700_000_000_000], "scene": [""], "query": [""], "session_id": [""],
    ...                       "suspected_bot": [False]})
    >>> store.upsert("events", frame)
    UpsertResult(inserted=1, updated=0, unchanged=0)
    >>> store.upsert("events", frame).unchanged
    1
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, inspect, select, text, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from shoplm.config import DatabaseSettings
from shoplm.errors import ShoplmError
from shoplm.store.alerts import AlertRepository
from shoplm.store.analytics import AnalyticsRepository
from shoplm.store.api_keys import ApiKeyRepository
from shoplm.store.audit import AuditRepository
from shoplm.store.candidates import CandidateRepository
from shoplm.store.conversations import ConversationRepository
from shoplm.store.erasure import ErasureRepository
from shoplm.store.events import EventRepository
from shoplm.store.experiments import ExperimentRepository
from shoplm.store.impressions import ImpressionRepository
from shoplm.store.items import ItemRepository
from shoplm.store.jobs import JobRunRepository
from shoplm.store.migrations import stamp_head
from shoplm.store.orders import OrderRepository
from shoplm.store.privacy import PrivacyRepository
from shoplm.store.review_sentiment import ReviewSentimentRepository
from shoplm.store.reviews import ReviewRepository
from shoplm.store.schema import TABLES, metadata
from shoplm.store.users import UserRepository

if TYPE_CHECKING:
    import pyarrow as pa

# Bound parameters per IN (...) lookup: below SQLite's oldest limit of 999.
log = logging.getLogger(__name__)

_LOOKUP_BATCH = 900
#: PostgreSQL advisory lock taken while a schema is created or migrated (any number, the same everywhere).
SCHEMA_LOCK_KEY = 0x73686F706C6D  # "shoplm"
_INSERT_BATCH = 10_000


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did: rows new to the store, rows changed, rows already there as given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def make_store_engine(url: str, *, checkpoint_on_commit: bool = True, pool: DatabaseSettings | None = None) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, foreign keys and a busy timeout.

    PostgreSQL gets a connection pool sized by ``pool`` (:class:`~shoplm.config.DatabaseSettings`,
    its defaults when not given).

    ``checkpoint_on_commit=False`` turns SQLite's automatic WAL checkpoints off: the commit that
    crosses 1,000 WAL pages would otherwise copy them into the database file and sync it
    (10-20 ms on this machine's disk) while the writer and everyone waiting on it wait; the
    caller then checkpoints in the background (:meth:`Store.open` with ``background_checkpoints``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
        else:
            # One shared connection, or every connection would see its own empty database.
            engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of the process (SIGKILL);
            # only an OS crash or power cut can undo the latest commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={1000 if checkpoint_on_commit else 0}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index updates of bulk ingest stay in memory
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        pool = pool or DatabaseSettings()
        return create_engine(
            parsed,
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.pool_timeout_seconds,
            pool_recycle=pool.pool_recycle_seconds,
            pool_pre_ping=pool.pool_pre_ping,
            connect_args={"connect_timeout": pool.connect_timeout_seconds},
        )
    raise ShoplmError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


def _python_values(column: pd.Series) -> list[Any]:
    """A column as Python scalars with None for missing values (what DB drivers take)."""
    if column.dtype == object:
        return column.where(column.notna(), None).tolist()
    if column.hasnans if hasattr(column, "hasnans") else column.isna().any():
        return column.astype(object).where(column.notna(), None).tolist()
    return column.tolist()


def _none_for_missing(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN/NaT replaced by None and numpy scalars made Python scalars."""
    as_object = frame.astype(object).where(frame.notna(), None)
    return as_object.to_dict("records")


def sqlite_files(url: str) -> list[Path]:
    """The files of a SQLite database at ``url`` (database, WAL, shared memory); none for others.

    Example:
        >>> [p.name for p in sqlite_files("sqlite:////tmp/shop.sqlite")]
        ['shop.sqlite', 'shop.sqlite-wal', 'shop.sqlite-shm']
        >>> sqlite_files("postgresql://db/shop")
        []
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return []
    return [Path(parsed.database + suffix) for suffix in ("", "-wal", "-shm")]


class Store:
    """Typed access to the shop's data. Open with :meth:`open`; close with :meth:`close`.

    Attributes:
        events, items, users, orders, conversations, api_keys, analytics, alerts, jobs, candidates: the
            repository of each table family (see their modules).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checkpoints_stop: threading.Event | None = None
        self._checkpoints: threading.Thread | None = None
        files = sqlite_files(engine.url.render_as_string(hide_password=False))
        self._lock_path = files[0].with_name(files[0].name + "-writer.lock") if files else None
        self._lock_fd: int | None = None
        self._thread_lock = threading.RLock()
        self.events = EventRepository(self)
        self.items = ItemRepository(self)
        self.users = UserRepository(self)
        self.orders = OrderRepository(self)
        self.conversations = ConversationRepository(self)
        self.api_keys = ApiKeyRepository(self)
        self.analytics = AnalyticsRepository(self)
        self.alerts = AlertRepository(self)
        self.privacy = PrivacyRepository(self)
        self.audit = AuditRepository(self)
        self.erasure = ErasureRepository(self)
        self.jobs = JobRunRepository(self)
        self.candidates = CandidateRepository(self)
        self.impressions = ImpressionRepository(self)
        self.experiments = ExperimentRepository(self)
        self.review_sentiment = ReviewSentimentRepository(self)
        self.reviews = ReviewRepository(self)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = True,
        background_checkpoints: float | None = None,
        pool: DatabaseSettings | None = None,
    ) -> Store:
        """Connect to the database at ``url``; an empty one gets today's schema.

        A database without tables (a new SQLite file, a new PostgreSQL database) is created at
        the newest schema revision and stamped so. A database with tables is left to the
        migrations (``shoplm db upgrade``, :mod:`shoplm.store.migrate`): creating some tables in
        it here would leave it at no revision at all.

        Args:
            url: ``sqlite:///PATH``, ``sqlite://`` (in memory) or ``postgresql://...``.
            create: create the schema if the database is empty.
            background_checkpoints: for a SQLite file, checkpoint its WAL every this many seconds
                in a background thread instead of in the commit that fills it (what a server
                wants: no commit pays for a checkpoint). Ignored for other databases.
            pool: PostgreSQL's connection pool settings (default :class:`~shoplm.config.DatabaseSettings`).
        """
        background = background_checkpoints is not None and bool(sqlite_files(url))
        store = cls(make_store_engine(url, checkpoint_on_commit=not background, pool=pool))
        if create:
            store._create_if_empty()
        if background:
            store._start_checkpoints(float(background_checkpoints))  # type: ignore[arg-type]
        return store

    def _create_if_empty(self) -> None:
        """Create today's schema, stamped at the newest migration, in a database with none of shoplm's tables.

        One process at a time: SQLite's writer lock, PostgreSQL's advisory lock (both held to
        the commit), so two servers starting on a new database do not both create it.
        """
        with self.transaction() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            # Only shoplm's own tables count: a PostgreSQL schema may hold other applications' too.
            present = set(inspect(connection).get_table_names())
            if present & {*metadata.tables, "alembic_version"}:
                missing = sorted(set(metadata.tables) - present)
                if missing:  # an older schema: say what fixes it before a query fails on a missing table
                    log.warning("the store lacks the tables %s: run `shoplm db upgrade`", ", ".join(missing))
                return
            metadata.create_all(connection)
            stamp_head(connection)

    def _start_checkpoints(self, seconds: float) -> None:
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(seconds):
                self.checkpoint()

        self._checkpoints_stop = stop
        self._checkpoints = threading.Thread(target=run, name="shoplm-wal-checkpoints", daemon=True)
        self._checkpoints.start()

    def checkpoint(self) -> None:
        """Copy committed WAL pages into a SQLite file's database without waiting on anyone (PASSIVE)."""
        if self._lock_path is None:  # not a SQLite file
            return
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # retried next interval; readers and writers never wait on it
            log.warning("WAL checkpoint failed: %s", exc)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    def close(self) -> None:
        if self._checkpoints_stop is not None and self._checkpoints is not None:
            self._checkpoints_stop.set()
            self._checkpoints.join(timeout=10)
            self.checkpoint()
            self._checkpoints_stop = self._checkpoints = None
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Example:
            >>> store = Store.open("sqlite://")
            >>> rows = pd.DataFrame({"event_id": ["e1"], "user_id": ["u1"], "item_id": ["i1"],
            ...                      "event_type": ["view"], "ts_ms": [1], "scene": [""], "query": [""],
            ...                      "session_id": [""], "suspected_bot": [False]})
            >>> with store.transaction() as connection:
            ...     _ = store.upsert("events", rows, connection=connection)
            >>> store.count("events")
            1
        """
        with self._writer_lock(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """SQLite: one writing process at a time, by a lock file the kernel hands over at once.

        SQLite lets one connection write at a time, and a connection that finds the database
        locked sleeps and retries (1, 2, 5, 10 ms ...): two server processes writing at the same
        time would make each other wait those sleeps. An exclusive ``flock`` around the whole
        transaction wakes the next writer the moment the lock is free. Threads of one process
        share the lock file's descriptor, so a thread lock orders them first.
        """
        if self._lock_path is None:
            yield
            return
        with self._thread_lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def ping(self) -> None:
        """Raise unless the database answers (for readiness checks)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------
    def upsert(self, table_name: str, frame: pd.DataFrame, *, connection: Connection | None = None) -> UpsertResult:
        """Insert rows new by primary key; update rows whose ``content_hash`` changed.

        Tables without a ``content_hash`` column (events, reviews, messages, order lines)
        are append-only: a row whose key exists already is counted unchanged. Runs in one
        transaction unless a ``connection`` (inside a caller's transaction) is given.
        """
        if connection is None:
            with self.transaction() as conn:
                return self.upsert(table_name, frame, connection=conn)
        table = TABLES[table_name]
        if frame.empty:
            return UpsertResult()
        if "content_hash" not in table.c:
            # Append-only: let the database skip known keys instead of looking them up first.
            key_cols = [c.name for c in table.primary_key.columns]
            frame = frame.drop_duplicates(subset=key_cols, keep="last")
            inserted = self._insert(connection, table_name, frame, skip_existing=True)
            return UpsertResult(inserted, 0, len(frame) - inserted)
        frame, is_new, is_changed = self.classify(table_name, frame, connection=connection)
        new_rows = frame[is_new]
        changed = frame[is_changed]
        self._insert(connection, table_name, new_rows)
        if len(changed):
            key_cols = [c.name for c in table.primary_key.columns]
            statement = table.update().where(*[table.c[k] == bindparam(f"b_{k}") for k in key_cols])
            rows = _none_for_missing(changed)
            for row in rows:
                for k in key_cols:
                    row[f"b_{k}"] = row[k]
            connection.execute(statement, rows)
        return UpsertResult(len(new_rows), len(changed), len(frame) - len(new_rows) - len(changed))

    def _insert(self, conn: Connection, table_name: str, frame: pd.DataFrame, *, skip_existing: bool = False) -> int:
        """Bulk insert through the driver's executemany; returns rows inserted.

        Bypasses SQLAlchemy's per-row parameter processing, which costs more than the
        database itself on large batches.
        """
        if frame.empty:
            return 0
        quote = conn.dialect.identifier_preparer.quote
        columns = list(frame.columns)
        marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO {quote(table_name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join([marker] * len(columns))})"
        )
        if skip_existing:
            sql += " ON CONFLICT DO NOTHING"
        values = [_python_values(frame[c]) for c in columns]
        rows = list(zip(*values, strict=True))
        inserted = 0
        for start in range(0, len(rows), _INSERT_BATCH):
            batch = rows[start : start + _INSERT_BATCH]
            result = conn.exec_driver_sql(sql, batch)
            inserted += result.rowcount if result.rowcount >= 0 else len(batch)
        return inserted

    def classify(
        self, table_name: str, frame: pd.DataFrame, *, connection: Connection
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Split rows (deduplicated by key, last wins) into new and changed ones.

        Returns the deduplicated frame and two masks over it: rows whose key is not stored,
        and rows whose key is stored with another ``content_hash``.
        """
        table = TABLES[table_name]
        key_cols = [c.name for c in table.primary_key.columns]
        frame = frame.drop_duplicates(subset=key_cols, keep="last").reset_index(drop=True)
        has_hash = "content_hash" in table.c
        known = self._existing(connection, table_name, frame[key_cols], with_hash=has_hash)
        keys = list(frame[key_cols].itertuples(index=False, name=None))
        is_known = np.fromiter((k in known for k in keys), dtype=bool, count=len(keys))
        if has_hash:
            hashes = frame["content_hash"].to_numpy()
            is_changed = np.fromiter(
                (bool(is_known[i]) and known[k] != hashes[i] for i, k in enumerate(keys)), dtype=bool, count=len(keys)
            )
        else:
            is_changed = np.zeros(len(keys), dtype=bool)
        return frame, ~is_known, is_changed

    def delete(self, table_name: str, where: Any, *, connection: Connection | None = None) -> int:
        """Delete the rows matching a SQLAlchemy condition; returns how many."""
        table = TABLES[table_name]
        if connection is None:
            with self.transaction() as conn:
                return conn.execute(table.delete().where(where)).rowcount
        return connection.execute(table.delete().where(where)).rowcount

    def _existing(
        self, conn: Connection, table_name: str, keys: pd.DataFrame, *, with_hash: bool
    ) -> dict[tuple[Any, ...], Any]:
        table = TABLES[table_name]
        key_cols = [table.c[c] for c in keys.columns]
        selected = [*key_cols, table.c.content_hash] if with_hash else key_cols
        found: dict[tuple[Any, ...], Any] = {}
        values = list(keys.itertuples(index=False, name=None))
        batch = max(1, _LOOKUP_BATCH // len(key_cols))
        for start in range(0, len(values), batch):
            chunk = values[start : start + batch]
            if len(key_cols) == 1:
                condition = key_cols[0].in_([v[0] for v in chunk])
            else:
                condition = tuple_(*key_cols).in_(chunk)
            for row in conn.execute(select(*selected).where(condition)):
                key = tuple(row[: len(key_cols)])
                found[key] = row[-1] if with_hash else True
        return found

    # -- reading ---------------------------------------------------------------------
    def count(self, table_name: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(TABLES[table_name])).scalar_one())

    def counts(self) -> dict[str, int]:
        """Row counts of every table."""
        return {name: self.count(name) for name in TABLES}

    def frame(
        self,
        table_name: str,
        columns: Sequence[str] | None = None,
        *,
        where: Any = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows of a table as a DataFrame (only the ``columns`` asked for, which is fastest)."""
        table = TABLES[table_name]
        names = list(columns) if columns else [c.name for c in table.columns]
        unknown = [n for n in names if n not in table.c]
        if unknown:
            raise ShoplmError(f"table {table_name!r} has no column(s) {unknown}")
        statement = select(*[table.c[n] for n in names])
        if where is not None:
            statement = statement.where(where)
        if order_by:
            statement = statement.order_by(*[table.c[n] for n in order_by])
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=names)
        return _typed(frame, table_name)

    def iter_frames(
        self, table_name: str, columns: Sequence[str] | None = None, *, chunk_rows: int = 100_000
    ) -> Iterator[pd.DataFrame]:
        """Stream a table in chunks of ``chunk_rows`` (bounded memory)."""
        table = TABLES[table_name]
        names = list(columns) if columns else [c.name for c in table.columns]
        statement = select(*[table.c[n] for n in names])
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(statement)
            for partition in result.partitions(chunk_rows):
                yield _typed(pd.DataFrame.from_records(partition, columns=names), table_name)

    def arrow(self, table_name: str, columns: Sequence[str] | None = None, **kwargs: Any) -> pa.Table:
        """Rows of a table as an Arrow table (see :meth:`frame`)."""
        import pyarrow as pa  # only here: importing it costs a serving process a quarter second

        return pa.Table.from_pandas(self.frame(table_name, columns, **kwargs), preserve_index=False)


_INT_COLUMNS = {"ts_ms", "updated_ms", "created_ms", "started_ms", "line_no", "quantity"}


def typed_frame(frame: pd.DataFrame, table_name: str) -> pd.DataFrame:
    """Give integer timestamp columns a numeric dtype even when the frame is empty."""
    return _typed(frame, table_name)


def _typed(frame: pd.DataFrame, table_name: str) -> pd.DataFrame:
    """Give integer timestamp columns a numeric dtype even when the frame is empty."""
    for column in frame.columns:
        if column in _INT_COLUMNS and frame[column].notna().all():
            frame[column] = frame[column].astype(np.int64)
    return frame
