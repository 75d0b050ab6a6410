"""Group commit of behaviour events: concurrent requests share one transaction, each answered after it commits.

One commit costs about as much as the insert of a few events, and SQLite has one writer at a
time, so committing each request on its own makes requests wait on each other's commits. An
:class:`EventWriter` runs one writer thread: a request hands over its rows and waits; the
thread takes every request that is waiting, inserts each one's rows and commits them all at
once, then tells each request which of its events it stored. A request is answered only after
the commit that holds its events, so an acknowledged event survives a crash of the process.

Example:
    >>> from shoplm.store import Store
    >>> writer = EventWriter(Store.open("sqlite://")).start()
    >>> row = {"event_id": "e1", "user_id": "u_1", "item_id": "i1", "event_type": "view", "scene": "",
    ...        "query": "", "value": None, "ts_ms": 1_700_000_000_000, "session_id": "", "suspected_bot": False}
    >>> writer.write([row]), writer.write([row])
    ({'e1'}, set())
    >>> writer.stop()
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from shoplm.store import Store

log = logging.getLogger(__name__)

#: Requests one commit takes at most (their rows go in one transaction).
MAX_REQUESTS_PER_COMMIT = 256


class EventWriter:
    """The writer thread of one process (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0
        self.requests = 0
        self._queue: queue.SimpleQueue[tuple[Sequence[dict[str, Any]], Future[set[str]]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="shoplm-event-writer", daemon=True)

    def start(self) -> EventWriter:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is waiting, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, rows: Sequence[dict[str, Any]]) -> Future[set[str]]:
        """Queue one request's rows; the future holds the ids it stored, once committed."""
        future: Future[set[str]] = Future()
        if not self._thread.is_alive():
            future.set_exception(RuntimeError("the event writer is not running"))
            return future
        self._queue.put((rows, future))
        return future

    def write(self, rows: Sequence[dict[str, Any]], timeout: float = 60.0) -> set[str]:
        """Store one request's rows and wait for the commit (from a thread); the ids stored."""
        return self.submit(rows).result(timeout)

    async def write_async(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """:meth:`write` for the event loop: waits without blocking it."""
        return await asyncio.wrap_future(self.submit(rows))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            waiting = [first]
            # Everything that queued up while the last commit ran goes into this one.
            while len(waiting) < MAX_REQUESTS_PER_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                waiting.append(more)
            self._commit(waiting)

    def _commit(self, waiting: list[tuple[Sequence[dict[str, Any]], Future[set[str]]]]) -> None:
        try:
            stored = self.store.events.insert_batches([rows for rows, _ in waiting])
        except Exception as exc:  # nothing of these requests is stored: each is answered with the error
            log.exception("committing %d event batches failed", len(waiting))
            for _, future in waiting:
                future.set_exception(exc)
            return
        self.commits += 1
        self.requests += len(waiting)
        for (_, future), ids in zip(waiting, stored, strict=True):
            future.set_result(ids)
