"""The engine bound to a shop's store: live histories, pseudonymous ids, new items, profiles.

:class:`ShopRecommender` reads each user's newest events from the store at request time
(an indexed query), so an event committed a second ago already shapes the next answer. A
catalog item added through :meth:`ShopRecommender.add_items` is encoded and recommendable at
once through the text source; :meth:`ShopRecommender.refresh` refits the cheap sources
(popularity, co-occurrence) from the store without retraining the others.

Example:
    >>> from shoplm.config import Settings                      # doctest: +SKIP
    >>> from shoplm.store import Store                          # doctest: +SKIP
    >>> settings = Settings(); store = Store.open(settings.database_url)  # doctest: +SKIP
    >>> shop = ShopRecommender.load(store, settings)            # doctest: +SKIP
    >>> shop.recommend("U00042", scene="home", k=5)             # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, select
from threadpoolctl import threadpool_limits

from shoplm.config import Settings
from shoplm.errors import InputError, ModelFileError
from shoplm.estimator import Estimator
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.recommend.base import CandidateSource, Interactions
from shoplm.recommend.catalog import CATALOG_COLUMNS, CatalogView
from shoplm.recommend.engine import Recommendation, RecommendationEngine
from shoplm.recommend.rules import BusinessRules
from shoplm.registry import ModelRegistry
from shoplm.store import Store
from shoplm.store.schema import events as events_table

#: Model directories under ``settings.models_dir`` that the shop recommender loads when present.
SOURCE_NAMES = ("sequential", "cooccurrence", "als", "text", "popularity")


@dataclass(frozen=True)
class UserProfile:
    """What shoplm knows of a user's interests, readable and as a vector."""

    user_id: str
    events: int
    top_categories: list[tuple[str, float]]
    top_brands: list[tuple[str, float]]
    price_band: str  # budget / mid / premium / unknown
    tags: list[str]
    vector: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "events": self.events,
            "top_categories": [{"category": c, "share": round(s, 3)} for c, s in self.top_categories],
            "top_brands": [{"brand": b, "share": round(s, 3)} for b, s in self.top_brands],
            "price_band": self.price_band,
            "tags": self.tags,
            "vector": [round(v, 5) for v in self.vector],
        }


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
        self._category_median = _category_medians(engine.catalog)
        self.version: str = ""  # the model version directory this recommender was loaded from

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, settings: Settings, *, models_dir: Path | None = None) -> ShopRecommender:
        """Load every saved source of the live model version (or of the directory ``models_dir``)."""
        # Serving answers many small requests: extra BLAS threads only wait on each other
        # (ALS scoring 8 ms -> 0.3 ms on a busy 2-core machine). Process-wide, on purpose.
        threadpool_limits(limits=1, user_api="blas")
        root = models_dir or ModelRegistry(settings.models_dir).current_dir()
        if root is None:
            raise ModelFileError(
                f"no trained recommenders in {settings.models_dir}: run `shoplm train` (or `shoplm demo`) first"
            )
        sources: dict[str, CandidateSource] = {}
        versions: dict[str, str] = {}
        for name in SOURCE_NAMES:
            path = root / name
            if (path / "meta.json").is_file():
                model = Estimator.load(path)
                if isinstance(model, CandidateSource):
                    sources[name] = model
                    versions[name] = json.loads((path / "meta.json").read_text()).get("saved_at", "")
        if not sources:
            raise ModelFileError(f"no trained recommenders in {root}: run `shoplm train` (or `shoplm demo`) first")
        if "sequential" in sources:
            import torch

            # Same reason for torch, and it must be set once: concurrent requests toggling the
            # process-wide thread count would race each other.
            torch.set_num_threads(1)
        ranker = None
        if (root / "ranker" / "meta.json").is_file():
            from shoplm.recommend.ranker import HybridRanker

            ranker = HybridRanker.load(root / "ranker")
            versions["ranker"] = json.loads((root / "ranker" / "meta.json").read_text()).get("saved_at", "")
        rec = settings.recommend
        rules = BusinessRules(
            exclude_out_of_stock=rec.exclude_out_of_stock,
            exclude_purchased=rec.exclude_purchased,
            max_per_category=rec.max_per_category,
        )
        catalog = CatalogView.from_frame(store.catalog(CATALOG_COLUMNS))
        engine = RecommendationEngine(
            catalog, sources, rules=rules, ranker=ranker, candidates_per_source=rec.candidates_per_source
        )
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
        shop.sync_catalog(store.catalog(CATALOG_COLUMNS))
        return shop

    def sync_catalog(self, catalog: pd.DataFrame) -> list[str]:
        """Give the text source every catalog item it lacks (items ingested after training)."""
        text = self.engine.sources.get("text")
        if text is None or catalog.empty:
            return []
        known = set(text.item_ids_.tolist())
        missing = catalog[~catalog["item_id"].astype(str).isin(known)]
        if missing.empty:
            return []
        from shoplm.jobs import item_texts

        with self._lock:
            vectors = self._text_encoder().encode(item_texts(missing), mode="passage")
            text.add_items(missing["item_id"].astype(str).tolist(), vectors)  # type: ignore[attr-defined]
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
        statement = (
            select(events_table.c.item_id, events_table.c.event_type)
            .where(
                and_(
                    events_table.c.user_id == user_key,
                    events_table.c.item_id.is_not(None),
                    events_table.c.suspected_bot.is_(False),
                )
            )
            .order_by(events_table.c.ts_ms.desc())
            .limit(self.history_limit)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        rows.reverse()
        items = [str(item) for item, event_type in rows if event_type != "search"]
        purchased = [str(item) for item, event_type in rows if event_type == "purchase"]
        return items, purchased

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
    ) -> list[Recommendation]:
        """Recommendations for a user (``None`` or unknown: cold start) in a scene.

        ``session`` holds item ids the caller knows of but the store may not have yet;
        ``stored`` is the user's :meth:`history` when the caller has read it already.
        """
        history: list[str] = []
        purchased: list[str] = []
        if stored is not None:
            history, purchased = stored
        elif user_id:
            history, purchased = self.history(self.user_key(user_id, pseudonymous=pseudonymous))
        history = [*history, *[str(i) for i in session]][-self.history_limit :]
        return self.engine.recommend(
            history, scene=scene, k=k, item_id=item_id, cart=cart, query=query, purchased=purchased, rules=rules
        )

    # -- catalog in real time ---------------------------------------------------------
    def encode_query(self, text: str) -> np.ndarray:
        return self._text_encoder().encode([text], mode="query")[0]

    def _text_encoder(self) -> Any:
        if self._encoder is None:
            from shoplm.lm import load_encoder

            self._encoder = load_encoder(self.settings) if self.settings else load_encoder("e5-onnx")
        return self._encoder

    def add_items(self, frame: pd.DataFrame) -> list[str]:
        """Update the catalog view with ``frame`` (store rows); new items become recommendable.

        New items are encoded and added to the text source, so text-driven scenes (search,
        similar items, a history with similar items) can show them before any retrain.
        """
        with self._lock:
            new_ids = self.engine.catalog.upsert(frame)
            text = self.engine.sources.get("text")
            if new_ids and text is not None:
                from shoplm.jobs import item_texts

                rows = frame[frame["item_id"].astype(str).isin(new_ids)]
                vectors = self._text_encoder().encode(item_texts(rows), mode="passage")
                text.add_items(rows["item_id"].astype(str).tolist(), vectors)  # type: ignore[attr-defined]
            self._category_median = _category_medians(self.engine.catalog)
            self.engine.refresh_alignment()
        return new_ids

    def refresh(self, *, since_ms: int | None = None) -> dict[str, float]:
        """Refit the cheap sources (popularity, co-occurrence) from the store; returns seconds each."""
        from shoplm.recommend.cooccurrence import CooccurrenceRecommender
        from shoplm.recommend.popularity import PopularityRecommender

        frame = self.store.frame("events", ["user_id", "item_id", "event_type", "ts_ms", "suspected_bot"])
        frame = frame[~frame["suspected_bot"].astype(bool)]
        if since_ms is not None:
            frame = frame[frame["ts_ms"] >= since_ms]
        interactions = Interactions.from_frame(frame)
        timings: dict[str, float] = {}
        if not len(interactions):
            return timings
        catalog = self.engine.catalog
        categories = dict(zip(catalog.item_ids, catalog.category, strict=True))
        for name, fit in (
            ("popularity", lambda: PopularityRecommender(by_category=True).fit(interactions, item_category=categories)),
            ("cooccurrence", lambda: CooccurrenceRecommender().fit(interactions)),
        ):
            if name in self.engine.sources:
                started = time.perf_counter()
                self.engine.replace_source(name, fit())
                timings[name] = time.perf_counter() - started
        return timings

    # -- profiles -----------------------------------------------------------------------
    def profile(self, user_id: str, *, pseudonymous: bool = False) -> UserProfile:
        """Interest tags (categories, brands, price band) and a vector for the user."""
        key = self.user_key(user_id, pseudonymous=pseudonymous)
        history, _purchased = self.history(key)
        catalog = self.engine.catalog
        positions = catalog.positions(history)
        categories = _shares(catalog.top_category[positions])
        brands = _shares(catalog.brand[positions])
        band = self._price_band(positions)
        tags = [c for c, _ in categories[:3]] + [b for b, _ in brands[:2]] + ([band] if band != "unknown" else [])
        return UserProfile(key, len(history), categories[:5], brands[:5], band, tags, self._user_vector(history))

    def _price_band(self, positions: np.ndarray) -> str:
        catalog = self.engine.catalog
        ratios = [
            catalog.price[p] / self._category_median[catalog.top_category[p]]
            for p in positions
            if np.isfinite(catalog.price[p]) and self._category_median.get(catalog.top_category[p], 0) > 0
        ]
        if not ratios:
            return "unknown"
        median = float(np.median(ratios))
        return "budget" if median < 0.8 else "premium" if median > 1.25 else "mid"

    def _user_vector(self, history: Sequence[str]) -> list[float]:
        # A latent (ALS) vector when the model knows the history, else the text taste vector.
        for name, method in (("als", "user_vector"), ("text", "profile")):
            source = self.engine.sources.get(name)
            vector = getattr(source, method)(history) if source is not None and hasattr(source, method) else None
            if vector is not None:
                return [float(v) for v in vector]
        return []


def _shares(values: np.ndarray) -> list[tuple[str, float]]:
    counts = Counter(v for v in values if v)
    total = sum(counts.values())
    return [(str(v), n / total) for v, n in counts.most_common()] if total else []


def _category_medians(catalog: CatalogView) -> dict[str, float]:
    frame = pd.DataFrame({"category": catalog.top_category, "price": catalog.price})
    return frame.dropna().groupby("category")["price"].median().to_dict()


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
