"""The engine bound to a shop's store: live histories, pseudonymous ids, new items, profiles, refresh.

:class:`ShopRecommender` reads each user's newest events from the store at request time
(one indexed query), so an event committed a second ago already shapes the next answer. A
catalog item added through :meth:`ShopRecommender.add_items` is encoded and recommendable at
once through the text source; :meth:`ShopRecommender.refresh` refits the registry's cheap
(``refresh``) sources from the store without retraining the others.

Example:
    >>> from shoplm.config import Settings                      # doctest: +SKIP
    >>> from shoplm.store import Store                          # doctest: +SKIP
    >>> settings = Settings(); store = Store.open(settings.database_url)  # doctest: +SKIP
    >>> shop = ShopRecommender.load(store, settings)            # doctest: +SKIP
    >>> shop.recommend("U00042", scene="home", k=5)             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import InputError, ModelFileError
from shoplm.estimator import Estimator
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.interactions import Interactions
from shoplm.lm.texts import item_texts
from shoplm.recommend.answers import AnswerCache
from shoplm.recommend.base import CandidateSource
from shoplm.recommend.catalog import CATALOG_COLUMNS, CatalogView
from shoplm.recommend.components import SCENES, SOURCES, TrainingInputs
from shoplm.recommend.engine import Recommendation, RecommendationEngine
from shoplm.recommend.profiles import UserProfile, build_profile, price_medians
from shoplm.recommend.rules import BusinessRules
from shoplm.store import Store

__all__ = [
    "RefreshScheduler",
    "ShopRecommender",
    "UserProfile",
    "business_rules",
    "history_basis",
    "load_engine",
    "split_history",
]


def business_rules(settings: Settings) -> BusinessRules:
    """The shop's business rules, from its ``[recommend]`` settings.

    Example:
        >>> business_rules(Settings()).max_seen_share
        0.34
    """
    rec = settings.recommend
    return BusinessRules(
        exclude_out_of_stock=rec.exclude_out_of_stock,
        exclude_purchased=rec.exclude_purchased,
        max_per_category=rec.max_per_category,
        max_seen_share=rec.max_seen_share,
    )


class ShopRecommender:
    """Recommendations for the shop's users by their own ids, from live store data."""

    def __init__(
        self,
        store: Store,
        engine: RecommendationEngine,
        pseudonymizer: Pseudonymizer,
        *,
        settings: Settings | None = None,
        history_limit: int = 50,
        versions: dict[str, str] | None = None,
        encoder: Any = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.pseudonymizer = pseudonymizer
        self.settings = settings
        self.history_limit = history_limit
        self.versions = versions or {}
        self._encoder: Any = encoder  # a TextEncoder; loaded from settings on first use when None
        self._lock = threading.Lock()  # serializes catalog changes; reads need no lock
        self._category_median = price_medians(engine.catalog)
        self.version: str = ""  # the model version directory this recommender was loaded from
        self.loaded_generation = -1  # the engine's generation when loaded: stored batch answers hold until it changes
        self.synced_items: list[str] = []  # catalog items the text source got at load (newer than the models)
        self._lists_available = False  # does the store hold batch-scored lists of this version?
        self._lists_checked_at = float("-inf")
        self.answers = AnswerCache(settings.recommend.answer_cache if settings else 0)
        self._strategies: dict[str, tuple[int, RecommendationEngine]] = {}  # A/B arms' engines by source

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, settings: Settings, *, models_dir: Path | None = None) -> ShopRecommender:
        """Load every registered source of the live model version (or of the directory ``models_dir``).

        Args:
            store: the shop's store (live histories and the catalog are read from it).
            settings: the shop's settings.
            models_dir: a model version directory to load instead of the live one.

        Returns:
            The recommender, its text source already holding every catalog item.
        """
        from threadpoolctl import threadpool_limits

        # Serving answers many small requests: extra BLAS threads only wait on each other
        # (ALS scoring 8 ms -> 0.3 ms on a busy 2-core machine). Process-wide, on purpose.
        threadpool_limits(limits=1, user_api="blas")
        root = models_dir or ModelRegistry(settings.models_dir).current_dir()
        if root is None:
            raise ModelFileError(
                f"no trained recommenders in {settings.models_dir}: run `shoplm train` (or `shoplm demo`) first"
            )
        catalog_frame = store.items.catalog(CATALOG_COLUMNS)
        engine, versions = load_engine(root, catalog_frame, settings)
        rec = settings.recommend
        shop = cls(
            store,
            engine,
            Pseudonymizer(settings.hmac_key),
            settings=settings,
            versions=versions,
            history_limit=rec.history_length,
        )
        shop.version = root.name
        shop.engine.query_encoder = shop.encode_query
        shop.synced_items = shop.sync_catalog(catalog_frame)
        shop.loaded_generation = shop.engine.generation
        return shop

    def sync_catalog(self, catalog: pd.DataFrame) -> list[str]:
        """Give the text source every catalog item it lacks (items ingested after training)."""
        text = self._text_source()
        if text is None or catalog.empty:
            return []
        known = set(text.item_ids_.tolist())
        missing = catalog[~catalog["item_id"].astype(str).isin(known)]
        if missing.empty:
            return []
        with self._lock:
            vectors = self._text_encoder().encode(item_texts(missing), mode="passage")
            text.add_items(missing["item_id"].astype(str).tolist(), vectors)
            self.engine.refresh_alignment()
        return missing["item_id"].astype(str).tolist()

    # -- users --------------------------------------------------------------------------
    def user_key(self, user_id: str, *, pseudonymous: bool = False) -> str:
        """The stored (pseudonymous) id of the shop's user id."""
        if not str(user_id).strip():
            raise InputError("user_id is empty")
        return str(user_id) if pseudonymous else self.pseudonymizer.user(str(user_id))

    def history(self, user_key: str) -> tuple[list[str], list[str]]:
        """The user's newest item events (oldest first) and purchased items, from the store."""
        return split_history(self.store.events.history(user_key, limit=self.history_limit))

    # -- the main call ----------------------------------------------------------------
    def recommend(
        self,
        user_id: str | None,
        *,
        scene: str = "home",
        k: int = 10,
        item_id: str | None = None,
        cart: Sequence[str] = (),
        query: str | None = None,
        session: Sequence[str] = (),
        rules: BusinessRules | None = None,
        pseudonymous: bool = False,
        stored: tuple[list[str], list[str]] | None = None,
        cached_only: bool = False,
        min_price: float | None = None,
        max_price: float | None = None,
        strategy: str = "default",
    ) -> list[Recommendation] | None:
        """Recommendations for a user (``None`` or unknown: cold start) in a scene.

        Args:
            user_id: the shop's user id (or with ``pseudonymous`` the stored one); None: a visitor.
            scene, k, item_id, cart, query, rules: see :meth:`RecommendationEngine.recommend`.
            session: item ids the caller knows of but the store may not have yet.
            stored: the user's :meth:`history` when the caller has read it already.
            cached_only: answer from the cache or not at all (None): a server computes the
                misses off its event loop.
            min_price, max_price: a price band on top of ``rules`` (or the shop's rules), e.g.
                the assistant's "a gift under 50".
            strategy: ``default`` (every source and the ranker), ``popular`` or one source's name
                alone (an A/B test's arm, :meth:`strategy_engine`).

        Returns:
            The ``k`` best items, best first, each with a reason (None: ``cached_only`` and not cached).
        """
        history: list[str] = []
        purchased: list[str] = []
        if stored is not None:
            history, purchased = stored
        elif user_id:
            history, purchased = self.history(self.user_key(user_id, pseudonymous=pseudonymous))
        history = [*history, *[str(i) for i in session]][-self.history_limit :]
        if min_price is not None or max_price is not None:
            rules = replace(rules or self.engine.rules, min_price=min_price, max_price=max_price)
        key = None
        if rules is None:  # the shop's own rules: the answer depends on nothing else than the key
            key = AnswerCache.key(
                self.engine.generation,
                scene,
                k,
                history=history,
                purchased=purchased,
                item_id=item_id,
                cart=cart,
                query=query,
            )
            if strategy != "default":
                key = (strategy, key)
            cached = self.answers.get(key)
            if cached is not None:
                return cached
        if cached_only:
            return None
        answer = None
        engine = self.strategy_engine(strategy)
        if (
            engine is self.engine
            and key is not None
            and user_id
            and scene == "home"
            and not (item_id or cart or query or session)
        ):
            answer = self._precomputed(self.user_key(user_id, pseudonymous=pseudonymous), history, purchased, k)
        if answer is None:
            answer = engine.recommend(
                history, scene=scene, k=k, item_id=item_id, cart=cart, query=query, purchased=purchased, rules=rules
            )
        if key is not None:
            self.answers.put(key, answer)
        return answer

    def strategy_engine(self, strategy: str) -> RecommendationEngine:
        """The engine serving ``strategy``: the live one for ``default``, else one source alone.

        ``popular`` is the popularity source; any other name is a source of the live engine, fused
        with nothing else and without the ranker (search scenes still match the query by text).
        A strategy whose source this model version lacks serves ``default``. Built once per
        engine generation (a refresh or new items rebuild it).
        """
        name = "popularity" if strategy == "popular" else strategy
        if strategy == "default" or name not in self.engine.sources:
            return self.engine
        live = self.engine
        built = self._strategies.get(name)
        if built is not None and built[0] == live.generation:
            return built[1]
        sources = {name: live.sources[name]}
        text = live.text_source
        if text is not None:
            sources[text] = live.sources[text]
        weights = {scene: {name: 1.0} for scene in SCENES}
        if text is not None:
            weights["search"] = {text: 1.0, name: 0.25} if name != text else {text: 1.0}
        engine = RecommendationEngine(
            live.catalog,
            sources,
            rules=live.rules,
            query_encoder=live.query_encoder,
            candidates_per_source=live.candidates_per_source,
            scene_weights=weights,
        )
        self._strategies[name] = (live.generation, engine)
        return engine

    def precompute(self, user_keys: Sequence[str], *, k: int = 10, pause: float = 0.002) -> int:
        """Compute and cache the home answers of these (pseudonymous) users ahead of their requests.

        Args:
            user_keys: the users, most important first.
            k: the answer's length the shop's pages ask for (the API's default is 10).
            pause: seconds to sleep between users, so a serving process's requests go first.

        Returns:
            How many answers were computed.
        """
        done = 0
        for user_key in user_keys:
            if self.answers.size <= 0 or done >= self.answers.size:
                break
            self.recommend(user_key, scene="home", k=k, pseudonymous=True)
            done += 1
            if pause:
                time.sleep(pause)
        return done

    def _precomputed(
        self, user_key: str, history: list[str], purchased: list[str], k: int
    ) -> list[Recommendation] | None:
        """The user's home answer stored by batch scoring, if it is what this engine would answer now.

        It holds while the list was scored by this model version, from the history the user
        still has, and the engine has not changed since it was loaded (no refresh, no new items).
        """
        if not self.version or self.engine.generation != self.loaded_generation:
            return None
        now = time.monotonic()
        if now - self._lists_checked_at > 60.0:
            # Most shops never run batch scoring: then no request pays for a lookup that finds nothing.
            self._lists_available = self.store.candidates.has_version(self.version)
            self._lists_checked_at = now
        if not self._lists_available:
            return None
        row = self.store.candidates.get(user_key)
        if row is None or row["version"] != self.version or len(row["items"]) < k:
            return None
        if row["basis"] != history_basis(history, purchased):
            return None
        return [Recommendation(**item) for item in row["items"][:k]]

    # -- catalog in real time ---------------------------------------------------------
    def encode_query(self, text: str) -> np.ndarray:
        return self._text_encoder().encode([text], mode="query")[0]

    def _text_encoder(self) -> Any:
        if self._encoder is None:
            from shoplm.lm import load_encoder

            self._encoder = load_encoder(self.settings) if self.settings else load_encoder("e5-onnx")
        return self._encoder

    def _text_source(self) -> Any:
        name = self.engine.text_source
        return self.engine.sources.get(name) if name else None

    def add_items(self, frame: pd.DataFrame) -> list[str]:
        """Update the catalog view with ``frame`` (store rows); new items become recommendable.

        New items are encoded and added to the text source, so text-driven scenes (search,
        similar items, a history with similar items) can show them before any retrain.
        """
        with self._lock:
            new_ids = self.engine.catalog.upsert(frame)
            text = self._text_source()
            if new_ids and text is not None:
                rows = frame[frame["item_id"].astype(str).isin(new_ids)]
                vectors = self._text_encoder().encode(item_texts(rows), mode="passage")
                text.add_items(rows["item_id"].astype(str).tolist(), vectors)
            self._category_median = price_medians(self.engine.catalog)
            self.engine.refresh_alignment()
        return new_ids

    def refresh(self, *, since_ms: int | None = None) -> dict[str, float]:
        """Refit the registry's cheap (``refresh``) sources from the store; returns seconds each."""
        frame = self.store.events.frame(("user_id", "item_id", "event_type", "ts_ms"), with_bots=False)
        if since_ms is not None:
            frame = frame[frame["ts_ms"] >= since_ms]
        interactions = Interactions.from_frame(frame)
        timings: dict[str, float] = {}
        if not len(interactions):
            return timings
        catalog = self.engine.catalog
        inputs = TrainingInputs(
            interactions=interactions,
            categories=dict(zip(catalog.item_ids, catalog.category, strict=True)),
            seed=self.settings.seed if self.settings else 0,
        )
        text = self._text_source()
        if text is not None:
            inputs = replace(inputs, item_ids=text.item_ids_, vectors=text.embeddings_)
        for name, component in SOURCES.items():
            if component.refresh and name in self.engine.sources and component.can_fit(inputs):
                started = time.perf_counter()
                self.engine.replace_source(name, component.fit(inputs))
                timings[name] = time.perf_counter() - started
        return timings

    # -- profiles -----------------------------------------------------------------------
    def profile(self, user_id: str, *, pseudonymous: bool = False) -> UserProfile:
        """Interest tags (categories, brands, price band) and a vector for the user."""
        key = self.user_key(user_id, pseudonymous=pseudonymous)
        history, _purchased = self.history(key)
        return build_profile(
            key, history, self.engine.catalog, self.engine.sources, category_medians=self._category_median
        )


def split_history(rows: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """A user's (item id, event type) rows, oldest first, as (items of the history, purchased items).

    Example:
        >>> split_history([("a", "view"), ("b", "purchase")])
        (['a', 'b'], ['b'])
    """
    items = [item for item, event_type in rows if event_type != "search"]
    purchased = [item for item, event_type in rows if event_type == "purchase"]
    return items, purchased


def history_basis(history: Sequence[str], purchased: Sequence[str]) -> str:
    """A short hash of what a home answer is computed from: a stored answer with the same basis still holds.

    Example:
        >>> history_basis(["a", "b"], ["b"]) == history_basis(["a", "b"], [])
        False
    """
    text = "\x1f".join(map(str, history)) + "\x1e" + "\x1f".join(map(str, purchased))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def load_engine(
    root: Path, catalog_frame: pd.DataFrame, settings: Settings
) -> tuple[RecommendationEngine, dict[str, str]]:
    """The engine of the model version directory ``root`` over this catalog, and each model's save time.

    A serving process and a batch-scoring worker build their engines with this one function, so
    both answer alike from the same files.

    Args:
        root: a model version directory (one sub-directory per trained source, and the ranker).
        catalog_frame: the store's catalog (:data:`~shoplm.recommend.catalog.CATALOG_COLUMNS`).
        settings: the shop's settings (business rules, candidates per source).

    Returns:
        ``(engine, versions)``: versions maps each loaded model to its ``saved_at``.

    Raises:
        ModelFileError: the directory holds no trained source.
    """
    sources: dict[str, CandidateSource] = {}
    versions: dict[str, str] = {}
    for name in SOURCES:
        path = root / name
        if (path / "meta.json").is_file():
            model = Estimator.load(path)
            if isinstance(model, CandidateSource):
                model.prepare_serving()
                sources[name] = model
                versions[name] = _saved_at(path)
    if not sources:
        raise ModelFileError(f"no trained recommenders in {root}: run `shoplm train` (or `shoplm demo`) first")
    ranker = None
    if (root / "ranker" / "meta.json").is_file():
        from shoplm.recommend.ranker import HybridRanker

        ranker = HybridRanker.load(root / "ranker")
        versions["ranker"] = _saved_at(root / "ranker")
    engine = RecommendationEngine(
        CatalogView.from_frame(catalog_frame),
        sources,
        rules=business_rules(settings),
        ranker=ranker,
        candidates_per_source=settings.recommend.candidates_per_source,
    )
    return engine, versions


def _saved_at(path: Path) -> str:
    return str(json.loads((path / "meta.json").read_text()).get("saved_at", ""))


class RefreshScheduler:
    """Refits the cheap sources of a :class:`ShopRecommender` every ``minutes`` in a daemon thread.

    Example:
        >>> scheduler = RefreshScheduler(shop, minutes=15).start()   # doctest: +SKIP
        >>> scheduler.stop()                                          # doctest: +SKIP
    """

    def __init__(self, shop: ShopRecommender, minutes: float) -> None:
        if minutes <= 0:
            raise InputError(f"refresh interval must be positive, got {minutes}")
        self.shop = shop
        self.interval = minutes * 60.0
        self.runs = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shoplm-refresh", daemon=True)

    def start(self) -> RefreshScheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.shop.refresh()
                self.runs += 1
                self.last_error = None
            except Exception as exc:  # a failed refresh keeps the old models serving
                self.last_error = f"{type(exc).__name__}: {exc}"
