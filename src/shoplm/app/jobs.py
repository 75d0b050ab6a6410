"""Application jobs that tie the layers together: encode the catalog, train, describe, demo.

The CLI and the HTTP service call these; they hold no state of their own beyond files in
``settings.data_dir``: item embeddings in ``embeddings/``, model versions in ``models/``.
Which candidate sources are trained comes from the source registry
(:data:`shoplm.recommend.components.SOURCES`): every source whose needs the data meets.

Example:
    >>> import tempfile
    >>> from shoplm.config import Settings
    >>> describe(Settings(data_dir=tempfile.mkdtemp()))["counts"]["items"]
    0
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import InputError, ModelFileError, ShoplmError
from shoplm.estimator import Estimator, read_model_meta
from shoplm.interactions import Interactions
from shoplm.lm.texts import item_texts
from shoplm.store import Store, sqlite_files

ProgressFactory = Callable[..., AbstractContextManager[Callable[[int, int], None]]]

INGEST_ORDER = ("items", "users", "events", "orders", "reviews", "conversations", "impressions")
DEMO_SEQUENTIAL_MINUTES = 1.5


# -- item embeddings ----------------------------------------------------------------------
def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)[:80]


def embeddings_path(settings: Settings, model_id: str) -> Path:
    return settings.data_dir / "embeddings" / f"items-{_slug(model_id)}.npz"


@dataclass
class EncodeResult:
    count: int
    model_id: str
    seconds: float
    cache_hits: int
    path: Path


def encode_catalog(
    store: Store, settings: Settings, *, progress: bool = True, ray_address: str | None = None
) -> EncodeResult:
    """Encode every catalog item's text; only new or changed texts reach the model (cache).

    Writes ``embeddings/items-<model>.npz`` (item ids + float32 vectors, no pickle). With
    ``ray_address`` (``"local"`` or a cluster's) the texts the cache lacks are encoded in chunks
    by Ray workers (:func:`shoplm.app.batch.catalog_encoder`).
    """
    from shoplm.lm import load_encoder

    started = time.perf_counter()
    catalog = store.items.catalog(["item_id", "title", "brand", "category"])
    if ray_address:
        from shoplm.app.batch import catalog_encoder

        encoder = catalog_encoder(settings, ray_address)
    else:
        encoder = load_encoder(settings)
    vectors = encoder.encode(item_texts(catalog), mode="passage", progress=progress)
    path = embeddings_path(settings, encoder.model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp.npz")
    np.savez(staging, item_ids=catalog["item_id"].to_numpy(dtype=np.str_), vectors=vectors.astype(np.float32))
    os.replace(staging, path)
    hits = int(getattr(encoder, "hits", 0))
    return EncodeResult(len(catalog), encoder.model_id, time.perf_counter() - started, hits, path)


def encode_reviews(
    store: Store, settings: Settings, *, ray_address: str | None = None, progress: bool = False
) -> dict[str, Any]:
    """Encode every review's text (here, or in chunks on Ray) into ``embeddings/reviews-<model>.npz``.

    Only texts the embedding cache lacks reach the model; with ``ray_address`` they are encoded in
    chunks by Ray workers (:func:`shoplm.app.batch.catalog_encoder`). The file holds ``review_ids`` and
    float32 ``vectors`` (no pickle), for opinion analytics over reviews.

    Returns:
        ``{"count", "model_id", "path", "seconds", "ran_on"}``.

    Raises:
        InputError: the store holds no review with text.
    """
    started = time.perf_counter()
    reviews = store.frame("reviews", ["review_id", "text"], order_by=["review_id"])
    reviews = reviews[reviews["text"].fillna("").str.strip() != ""]
    if reviews.empty:
        raise InputError("no review with text in the store: ingest reviews first")
    from shoplm.lm import load_encoder

    if ray_address:
        from shoplm.app.batch import catalog_encoder

        encoder = catalog_encoder(settings, ray_address)
    else:
        encoder = load_encoder(settings)
    vectors = encoder.encode(reviews["text"].astype(str).tolist(), mode="passage", progress=progress)
    items_path = embeddings_path(settings, encoder.model_id)
    path = items_path.with_name("reviews-" + items_path.name.removeprefix("items-"))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp.npz")
    np.savez(staging, review_ids=reviews["review_id"].to_numpy(dtype=np.str_), vectors=vectors.astype(np.float32))
    os.replace(staging, path)
    return {
        "count": len(reviews),
        "model_id": encoder.model_id,
        "path": path,
        "seconds": round(time.perf_counter() - started, 2),
        "ran_on": "ray" if ray_address else "local",
    }


def load_item_embeddings(settings: Settings, model_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Item ids and vectors written by :func:`encode_catalog` (newest file if no model id)."""
    if model_id is not None:
        path = embeddings_path(settings, model_id)
    else:
        found = sorted((settings.data_dir / "embeddings").glob("items-*.npz"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ShoplmError("no item embeddings yet: run `shoplm encode` first")
        path = found[-1]
    if not path.is_file():
        raise ShoplmError(f"no item embeddings at {path}: run `shoplm encode` first")
    with np.load(path, allow_pickle=False) as data:
        return data["item_ids"], data["vectors"]


# -- training ----------------------------------------------------------------------------
@dataclass
class TrainResult:
    name: str
    seconds: float
    path: Path
    model: Estimator = field(repr=False)


def training_interactions(store: Store, *, ray_address: str | None = None) -> Interactions:
    """Events of the store as :class:`~shoplm.interactions.Interactions` (bot bursts left out).

    With ``ray_address`` they are built in chunks of users on Ray
    (:func:`shoplm.app.batch.prepare_interactions`): the same interactions.
    """
    frame = store.events.frame(("user_id", "item_id", "event_type", "ts_ms"), with_bots=False)
    if ray_address:
        from shoplm.app.batch import prepare_interactions

        return prepare_interactions(frame, ray_address=ray_address)
    return Interactions.from_frame(frame)


def training_inputs(
    interactions: Interactions, catalog: pd.DataFrame, settings: Settings, item_ids: Any, vectors: Any
) -> Any:
    """What the source registry's factories read (see :class:`~shoplm.recommend.components.TrainingInputs`)."""
    from shoplm.recommend.components import TrainingInputs

    return TrainingInputs(
        interactions=interactions,
        categories=dict(zip(catalog["item_id"], catalog["category"], strict=True)),
        item_ids=item_ids,
        vectors=vectors,
        seed=settings.seed,
        minutes=settings.recommend.sequential_minutes,
        threads=max(1, os.cpu_count() or 1),
    )


def read_training_inputs(
    store: Store, settings: Settings, *, ray_address: str | None = None
) -> tuple[Any, pd.DataFrame]:
    """What the sources train on, read from the store, and the catalog frame it came with.

    Args:
        store: the shop's store.
        settings: settings (seed, budget, where the item embeddings are).
        ray_address: build the interactions on Ray (``"local"`` or a cluster's address).

    Returns:
        ``(TrainingInputs, catalog)``; the item embeddings are ``None`` before ``shoplm encode``
        (the sources that need text then sit out).
    """
    from shoplm.recommend.catalog import CATALOG_COLUMNS

    interactions = training_interactions(store, ray_address=ray_address)
    catalog = store.items.catalog(CATALOG_COLUMNS)
    try:
        item_ids, vectors = load_item_embeddings(settings)
    except ShoplmError:
        item_ids, vectors = None, None
    return training_inputs(interactions, catalog, settings, item_ids, vectors), catalog


def train_recommenders(
    store: Store,
    settings: Settings,
    *,
    on_step: Callable[[str], None] | None = None,
    ray_address: str | None = None,
) -> dict[str, TrainResult]:
    """Fit and save every registered source the data allows (time-capped ones within their
    budget), then the learned ranker over all of them, as a new model version made live at the end.

    Args:
        store: the shop's store.
        settings: settings; ``recommend.disabled_sources`` and ``recommend.ranker`` choose what runs.
        on_step: called with the name of each step as it starts (for progress displays).
        ray_address: prepare the training data in chunks of users on Ray (``"local"`` or an address).

    Returns:
        Name -> what was trained (empty when the store holds nothing to learn from).
    """
    from dataclasses import replace

    from shoplm.recommend.catalog import CatalogView
    from shoplm.recommend.components import SOURCES, fit_sources
    from shoplm.recommend.engine import RecommendationEngine
    from shoplm.recommend.ranker import HybridRanker

    inputs, catalog = read_training_inputs(store, settings, ray_address=ray_address)
    interactions = inputs.interactions
    disabled = set(settings.recommend.disabled_sources)
    results: dict[str, TrainResult] = {}
    registry = ModelRegistry(settings.models_dir)
    version_dir = registry.new_version()
    # The ranker learns from each sampled user's newest item, which none of the sources it reads
    # may have seen. The cheap sources are refitted without those items for it; a time-capped
    # source (the sequential model) is fitted once, without them, and served as it is: it reads
    # the live history at request time, so the newest events still count when it recommends.
    ranker = HybridRanker(seed=settings.seed) if settings.recommend.ranker and len(interactions) else None
    ranker_train, ranker_cases = interactions, []
    if ranker is not None:
        try:
            ranker_train, ranker_cases = ranker.training_split(interactions)
        except ShoplmError as exc:  # too few users for a ranker: fusion alone serves
            ranker = None
            if on_step:
                on_step(f"ranker skipped: {exc}")
    for name, component in SOURCES.items():
        if name in disabled or not component.can_fit(inputs):
            continue
        if on_step:
            on_step(name)
        started = time.perf_counter()
        data = ranker_train if component.budgeted else interactions
        model = component.fit(replace(inputs, interactions=data))
        results[name] = TrainResult(name, time.perf_counter() - started, model.save(version_dir / name), model)
    if ranker is not None:
        if on_step:
            on_step("ranker")
        started = time.perf_counter()
        cheap = fit_sources(
            replace(inputs, interactions=ranker_train), include=lambda c: not c.budgeted and c.name not in disabled
        )
        budgeted = {name: r.model for name, r in results.items() if SOURCES[name].budgeted}
        engine = RecommendationEngine(CatalogView.from_frame(catalog), {**cheap, **budgeted})
        try:
            ranker.fit_cases(engine, ranker_cases, catalog=engine.catalog)
            path = ranker.save(version_dir / "ranker")
            results["ranker"] = TrainResult("ranker", time.perf_counter() - started, path, ranker)
        except ShoplmError as exc:  # too little data for a ranker: fusion alone serves
            if on_step:
                on_step(f"ranker skipped: {exc}")
    if results:
        registry.publish(version_dir.name)
    else:
        shutil.rmtree(version_dir, ignore_errors=True)
    return results


def load_model(settings: Settings, name: str) -> Estimator:
    """The model ``name`` of the live version."""
    current = ModelRegistry(settings.models_dir).current_dir()
    if current is None:
        raise ModelFileError(f"no trained models in {settings.models_dir}: run `shoplm train` first")
    return Estimator.load(current / name)


# -- information ------------------------------------------------------------------------
def describe(settings: Settings) -> dict[str, Any]:
    """What the store holds and which models are saved.

    Args:
        settings: the shop's settings.

    Returns:
        ``database`` (URL, password hidden), ``counts`` per table, ``models`` (name -> class and
        time saved) and the live ``model_version`` (None before the first training).
    """
    store = Store.open(settings.database_url)
    try:
        counts = store.counts()
    finally:
        store.close()
    models: dict[str, str] = {}
    current = ModelRegistry(settings.models_dir).current_dir()
    if current is not None:
        for path in sorted(current.iterdir()):
            try:
                meta = read_model_meta(path)
            except ModelFileError:
                continue
            models[path.name] = f"{meta['class'].rsplit('.', 1)[-1]}, saved {meta['saved_at']}"
    version = current.name if current is not None else None
    return {"database": store.url, "counts": counts, "models": models, "model_version": version}


# -- the demo ---------------------------------------------------------------------------
def run_demo(
    settings: Settings,
    *,
    console: Any,
    progress_bar: ProgressFactory,
    fresh: bool = False,
    small: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate the demo store if absent, ingest it, encode items, train, print a report."""
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    timings: dict[str, float] = {}
    if "sequential_minutes" not in settings.recommend.model_fields_set:
        # The demo store is small: 90 s of sequential training is plenty and keeps `make demo` quick.
        recommend = settings.recommend.model_copy(update={"sequential_minutes": DEMO_SEQUENTIAL_MINUTES})
        settings = settings.model_copy(update={"recommend": recommend})
    source_dir = settings.data_dir / "demo-source"
    sizes = DemoSizes(n_items=400, n_users=600, n_events=20_000) if small else DemoSizes()
    if fresh:
        shutil.rmtree(source_dir, ignore_errors=True)
        _remove_sqlite(settings)
    manifest_marker = source_dir / "ground_truth.json"
    started = time.perf_counter()
    if not manifest_marker.exists():
        with progress_bar("generating the demo store", total=100) as update:
            manifest = generate_demo_store(
                source_dir, seed=seed, sizes=sizes, progress=lambda _step, f: update(int(f * 100), 100)
            )
        files = manifest.files
        console.print(f"[green]✓[/] generated the demo store in {source_dir}")
    else:
        files = demo_files(source_dir)
        console.print(f"[green]✓[/] the demo store exists in {source_dir} (use --fresh to regenerate)")
    timings["generate"] = time.perf_counter() - started

    store = Store.open(settings.database_url)
    started = time.perf_counter()
    for kind in INGEST_ORDER:
        if kind not in files:
            continue
        with progress_bar(f"ingesting {kind}") as update:
            report = ingest(kind, files[kind], store=store, settings=settings, progress=update)
        console.print(f"[green]✓[/] {report.summary()} [dim]({report.seconds:.1f} s)[/]")
    timings["ingest"] = time.perf_counter() - started

    # Reviews are scored as they arrive, as `shoplm ingest` does (settings.sentiment.score_on_ingest).
    from shoplm.app.reviews import after_ingest

    started = time.perf_counter()
    with progress_bar("scoring review sentiment") as update:
        scored = after_ingest(store, settings, INGEST_ORDER, progress=update)
    if scored is not None:
        console.print(f"[green]✓[/] sentiment: {scored.summary()}")
        timings["review sentiment"] = time.perf_counter() - started

    started = time.perf_counter()
    encoded = encode_catalog(store, settings, progress=console.is_terminal)
    timings["encode items"] = time.perf_counter() - started
    console.print(
        f"[green]✓[/] encoded {encoded.count:,} items with {encoded.model_id} "
        f"({encoded.cache_hits:,} from cache) in {encoded.seconds:.1f} s"
    )

    started = time.perf_counter()
    with console.status("training") as status:
        trained = train_recommenders(store, settings, on_step=lambda n: status.update(f"training {n}"))
    for result in trained.values():
        console.print(f"[green]✓[/] trained {result.name} in {result.seconds:.1f} s -> {result.path}")
    timings["train"] = time.perf_counter() - started

    counts = store.counts()
    console.print(_two_column_table("demo store", ("table", "rows"), [(n, f"{c:,}") for n, c in counts.items()]))
    console.print(_two_column_table("timings", ("step", "seconds"), [(s, f"{t:.1f}") for s, t in timings.items()]))
    samples = sample_recommendations(store, settings, users=3, k=5) if trained else []
    for sample in samples:
        console.print(f"\n[bold]user {sample['user_id']}[/] recently: " + "; ".join(sample["recent"]))
        for scene, items in sample["recommendations"].items():
            console.print(f"  [cyan]{scene}[/]")
            for rank, line in enumerate(items, start=1):
                console.print(f"    {rank}. {line}")
    store.close()
    return {"counts": counts, "timings": timings, "samples": samples}


def sample_recommendations(store: Store, settings: Settings, *, users: int = 3, k: int = 5) -> list[dict[str, Any]]:
    """Top-k titles with reasons in every scene for the most active users (for reports)."""
    from shoplm.app.recommender import ShopRecommender

    events = store.frame("events", ["user_id", "item_id", "event_type", "query", "ts_ms"])
    items = events[events["item_id"].notna()].sort_values("ts_ms", kind="stable")
    if items.empty:
        return []
    shop = ShopRecommender.load(store, settings)
    queries = events.loc[events["event_type"] == "search", "query"].dropna()
    samples = []
    for user in items["user_id"].value_counts().index[:users]:
        history, purchased = shop.history(user)
        anchor = history[-1]
        scenes: dict[str, dict[str, Any]] = {
            "home": {},
            "item_detail": {"item_id": anchor},
            "cart": {"cart": history[-2:]},
            "search": {"query": str(queries.iloc[len(samples) % len(queries)]) if len(queries) else "gift"},
            "post_purchase": {"item_id": purchased[-1] if purchased else anchor},
        }
        recs: dict[str, list[str]] = {}
        for scene, extra in scenes.items():
            found = shop.recommend(user, scene=scene, k=k, pseudonymous=True, **extra)
            label = scene if scene != "search" else f"search “{extra['query']}”"
            recs[label] = [f"{r.title[:36]} [dim]({r.reason[:60]})[/]" for r in found]
        recent = [shop.engine.catalog.title(item)[:40] for item in history[-3:]]
        samples.append({"user_id": user[:14], "recent": recent, "recommendations": recs})
    return samples


def _two_column_table(title: str, headers: tuple[str, str], rows: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(headers[0])
    table.add_column(headers[1], justify="right")
    for left, right in rows:
        table.add_row(left, right)
    return table


def demo_files(source_dir: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for kind in INGEST_ORDER:
        for suffix in (".parquet", ".csv", ".jsonl"):
            candidate = source_dir / f"{kind}{suffix}"
            if candidate.exists():
                files[kind] = candidate
    return files


def _remove_sqlite(settings: Settings) -> None:
    for path in sqlite_files(settings.database_url):
        path.unlink(missing_ok=True)
