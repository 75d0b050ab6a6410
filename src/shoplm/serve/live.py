"""The live recommender of a running service: loaded off the request path, swapped atomically.

A watcher thread polls :meth:`ModelRegistry.current` every ``reload_seconds``. When a new
version is published it loads a whole new :class:`ShopRecommender` in that thread, then
replaces one reference. A request reads the reference once and keeps that object to the
end, so requests in flight finish on the old models and none waits for the load.

Example:
    >>> live = LiveModels(store, settings).start()     # doctest: +SKIP
    >>> live.current.recommend("U1", k=5)               # doctest: +SKIP
    >>> live.stop()                                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from shoplm.app.recommender import RefreshScheduler, ShopRecommender
from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import ModelFileError
from shoplm.recommend.catalog import CATALOG_COLUMNS
from shoplm.store import Store

log = logging.getLogger("shoplm.serve")


class LiveModels:
    """Holds the current :class:`ShopRecommender` (or None before the first training)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        warm_encoder: bool = True,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_change = on_change  # told after every swap (the metrics' model gauges)
        self.settings = settings
        self.registry = ModelRegistry(settings.models_dir)
        self.warm_encoder = warm_encoder
        self.current: ShopRecommender | None = None
        self.reloads = 0
        self.last_error: str | None = None
        self.loaded_at: float | None = None
        self._scheduler: RefreshScheduler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._load_lock = threading.Lock()

    @property
    def version(self) -> str | None:
        shop = self.current
        return shop.version if shop is not None else None

    def load(self) -> bool:
        """Load the registry's live version if it is not the one serving; True if swapped."""
        with self._load_lock:
            wanted = self.registry.current()
            if wanted is None or wanted == self.version:
                return False
            started_ms = int(time.time() * 1000)
            try:
                shop = ShopRecommender.load(self.store, self.settings)
                if self.warm_encoder and shop.engine.text_source is not None:
                    shop.encode_query("warm up")  # the first query would otherwise pay the model load
            except (ModelFileError, OSError, ValueError) as exc:
                # A half-deleted or corrupt version: keep serving the old models.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("could not load model version %s: %s", wanted, exc)
                return False
            previous = self.current
            self.current = shop  # the swap: one reference assignment
            self._catch_up(shop, started_ms)
            self.reloads += previous is not None
            self.loaded_at = time.time()
            self.last_error = None
            self._restart_refresh(shop)
            if self.on_change is not None:
                self.on_change()
            log.info("serving model version %s", shop.version)
            self._precompute(shop)
            return True

    def _precompute(self, shop: ShopRecommender) -> None:
        """Compute the home answers of the most recently active users in the background."""
        count = self.settings.recommend.precompute_users
        if count <= 0 or shop.answers.size <= 0:
            return

        def run() -> None:
            try:
                users = [u for u, _n, _ts in self.store.events.recent_users(window=20 * count, limit=count)]
                # Stops early when a newer version is swapped in: its answers would be of no use.
                for start in range(0, len(users), 50):
                    if self.current is not shop or self._stop.is_set():
                        return
                    shop.precompute(users[start : start + 50])
            except Exception:  # an optimization only: requests compute what is missing
                log.exception("precomputing answers failed")

        threading.Thread(target=run, name="shoplm-precompute", daemon=True).start()

    def _catch_up(self, shop: ShopRecommender, since_ms: int) -> None:
        """Items put while the new models loaded went to the old object: give them to the new one."""
        frame = self.store.items.changed_since(since_ms - 1000, CATALOG_COLUMNS)
        if len(frame):
            shop.add_items(frame)

    def _restart_refresh(self, shop: ShopRecommender) -> None:
        if self._scheduler is not None:
            self._scheduler.stop(timeout=0.1)
        self._scheduler = RefreshScheduler(shop, self.settings.recommend.refresh_minutes).start()

    def start(self) -> LiveModels:
        """Start polling the registry in a daemon thread."""
        self._thread = threading.Thread(target=self._watch, name="shoplm-model-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._scheduler is not None:
            self._scheduler.stop(timeout=0.1)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.server.reload_seconds):
            try:
                self.load()
            except Exception as exc:  # the watcher must outlive any one bad version
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("model reload failed")
