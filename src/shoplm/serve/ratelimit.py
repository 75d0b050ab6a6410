"""Per-key rate limits shared by every worker process: token buckets in a small memory-mapped file.

Each worker of ``shoplm serve`` is its own process, so an in-memory bucket would let a key
make ``workers`` times its rate. The buckets live in a file under the data directory
(``run/ratelimit.bin``), mapped into every worker; a bucket is read and updated under a
byte-range lock on its own slot, so two workers never lose each other's spending and keys
never wait on each other. Two servers on one data directory share the limits too.

A key's bucket sits in slot ``hash(key) % slots``; a slot remembers whose bucket it holds, so
two keys meeting in one slot (rare with 4,096 slots) each start a fresh bucket when they take
it over, which can only let a key through, never refuse it wrongly.

Example:
    >>> import tempfile, pathlib
    >>> limiter = RateLimiter(rate=1, burst=2, path=pathlib.Path(tempfile.mkdtemp()) / "buckets")
    >>> [limiter.take("k") == 0 for _ in range(3)]
    [True, True, False]
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path

#: One slot: the key's 8-byte fingerprint, the tokens left and when they were counted.
_SLOT = struct.Struct("<Qdd")
SLOTS = 4096


class RateLimiter:
    """A token bucket per API key: ``rate`` requests a second on average, ``burst`` at once.

    Args:
        rate: tokens added per second; 0 turns limiting off.
        burst: the bucket's size (requests one key may make at once).
        path: the shared file; None keeps the buckets in this process only.
        slots: buckets in the file.
    """

    def __init__(self, rate: float, burst: int, *, path: Path | None = None, slots: int = SLOTS) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.slots = slots
        self._lock = threading.Lock()  # threads of one process: the file lock is per process
        self._local: dict[str, tuple[float, float]] = {}
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        if path is not None and rate > 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            size = slots * _SLOT.size
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
            self._map = mmap.mmap(self._fd, size)

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 if allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.time()  # the wall clock: the file is shared between processes
        with self._lock:
            if self._map is None:
                tokens, when = self._local.get(key, (self.burst, now))
                tokens, wait = self._spend(tokens, when, now)
                self._local[key] = (tokens, now)
                return wait
            fingerprint = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1
            offset = (fingerprint % self.slots) * _SLOT.size
            assert self._fd is not None
            fcntl.lockf(self._fd, fcntl.LOCK_EX, _SLOT.size, offset)
            try:
                owner, tokens, when = _SLOT.unpack_from(self._map, offset)
                if owner != fingerprint:
                    tokens, when = self.burst, now
                tokens, wait = self._spend(tokens, when, now)
                _SLOT.pack_into(self._map, offset, fingerprint, tokens, now)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, _SLOT.size, offset)
            return wait

    def _spend(self, tokens: float, when: float, now: float) -> tuple[float, float]:
        tokens = min(self.burst, tokens + max(0.0, now - when) * self.rate)
        if tokens >= 1.0:
            return tokens - 1.0, 0.0
        return tokens, (1.0 - tokens) / self.rate

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
