"""Application jobs that tie the layers together: encode the catalog, train, describe, demo.

The CLI and the HTTP service call these; they hold no state of their own beyond files in
``settings.data_dir``: item embeddings in ``embeddings/``, models in ``models/NAME/``.

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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.config import Settings
from shoplm.errors import ModelFileError, ShoplmError
from shoplm.estimator import Estimator, read_model_meta
from shoplm.store import Store

ProgressFactory = Callable[..., AbstractContextManager[Callable[[int, int], None]]]

INGEST_ORDER = ("items", "users", "events", "orders", "reviews", "conversations")


# -- item texts and embeddings -----------------------------------------------------------
def item_texts(catalog: pd.DataFrame) -> list[str]:
    """The text a language model reads for each item: title, brand and category.

    Kept short on purpose: encoding cost grows with length, and titles carry most of the
    meaning. The description is not included.

    Example:
        >>> item_texts(pd.DataFrame({"title": ["Mug"], "brand": ["Acme"], "category": ["Kitchen > Mugs"]}))
        ['Mug | Acme | Kitchen > Mugs']
    """
    parts = [catalog["title"].fillna("").astype(str)]
    for column in ("brand", "category"):
        if column in catalog.columns:
            parts.append(catalog[column].fillna("").astype(str))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + np.where(part != "", " | " + part, "")
    return joined.str.strip().tolist()


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


def encode_catalog(store: Store, settings: Settings, *, progress: bool = True) -> EncodeResult:
    """Encode every catalog item's text; only new or changed texts reach the model (cache).

    Writes ``embeddings/items-<model>.npz`` (item ids + float32 vectors, no pickle).
    """
    from shoplm.lm import load_encoder

    started = time.perf_counter()
    catalog = store.catalog(["item_id", "title", "brand", "category"])
    encoder = load_encoder(settings)
    vectors = encoder.encode(item_texts(catalog), mode="passage", progress=progress)
    path = embeddings_path(settings, encoder.model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp.npz")
    np.savez(staging, item_ids=catalog["item_id"].to_numpy(dtype=np.str_), vectors=vectors.astype(np.float32))
    os.replace(staging, path)
    hits = int(getattr(encoder, "hits", 0))
    return EncodeResult(len(catalog), encoder.model_id, time.perf_counter() - started, hits, path)


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


def training_interactions(store: Store) -> Any:
    """Events of the store as :class:`~shoplm.recommend.base.Interactions` (bot bursts left out)."""
    from shoplm.recommend.base import Interactions

    events = store.frame("events", ["user_id", "item_id", "event_type", "ts_ms", "suspected_bot"])
    events = events[~events["suspected_bot"].astype(bool)]
    return Interactions.from_frame(events)


def train_candidate_sources(
    store: Store, settings: Settings, *, on_step: Callable[[str], None] | None = None
) -> dict[str, TrainResult]:
    """Fit and save every candidate source that the data allows; returns what was trained."""
    from shoplm.recommend import (
        ALSRecommender,
        CooccurrenceRecommender,
        PopularityRecommender,
        TextSimilarityRecommender,
    )

    interactions = training_interactions(store)
    catalog = store.catalog(["item_id", "category"])
    results: dict[str, TrainResult] = {}

    def run(name: str, fit: Callable[[], Estimator]) -> None:
        if on_step:
            on_step(name)
        started = time.perf_counter()
        model = fit()
        path = model.save(settings.models_dir / name)
        results[name] = TrainResult(name, time.perf_counter() - started, path, model)

    if len(interactions):
        categories = dict(zip(catalog["item_id"], catalog["category"], strict=True))
        run("popularity", lambda: PopularityRecommender(by_category=True).fit(interactions, item_category=categories))
        run("cooccurrence", lambda: CooccurrenceRecommender().fit(interactions))
        run("als", lambda: ALSRecommender(random_state=settings.seed).fit(interactions))
    try:
        ids, vectors = load_item_embeddings(settings)
    except ShoplmError:
        ids = None
    if ids is not None and len(ids):
        run("text", lambda: TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors))
    return results


def load_model(settings: Settings, name: str) -> Estimator:
    """The saved model ``models/NAME``."""
    return Estimator.load(settings.models_dir / name)


# -- information ------------------------------------------------------------------------
def describe(settings: Settings) -> dict[str, Any]:
    """What the store holds and which models are saved."""
    store = Store.open(settings.database_url)
    try:
        counts = store.counts()
    finally:
        store.close()
    models: dict[str, str] = {}
    if settings.models_dir.is_dir():
        for path in sorted(settings.models_dir.iterdir()):
            try:
                meta = read_model_meta(path)
            except ModelFileError:
                continue
            models[path.name] = f"{meta['class'].rsplit('.', 1)[-1]}, saved {meta['saved_at']}"
    return {"database": store.url, "counts": counts, "models": models}


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
    from rich.table import Table

    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    timings: dict[str, float] = {}
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
        files = _demo_files(source_dir)
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

    started = time.perf_counter()
    encoded = encode_catalog(store, settings, progress=console.is_terminal)
    timings["encode items"] = time.perf_counter() - started
    console.print(
        f"[green]✓[/] encoded {encoded.count:,} items with {encoded.model_id} "
        f"({encoded.cache_hits:,} from cache) in {encoded.seconds:.1f} s"
    )

    started = time.perf_counter()
    with console.status("training") as status:
        trained = train_candidate_sources(store, settings, on_step=lambda n: status.update(f"training {n}"))
    for result in trained.values():
        console.print(f"[green]✓[/] trained {result.name} in {result.seconds:.1f} s -> {result.path}")
    timings["train"] = time.perf_counter() - started

    counts = store.counts()
    table = Table(title="demo store")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    timing_table = Table(title="timings")
    timing_table.add_column("step")
    timing_table.add_column("seconds", justify="right")
    for step, seconds in timings.items():
        timing_table.add_row(step, f"{seconds:.1f}")
    console.print(timing_table)
    samples = sample_recommendations(store, trained, users=3, k=5)
    for sample in samples:
        console.print(f"\n[bold]user {sample['user_id']}[/] recently: " + "; ".join(sample["recent"]))
        for source, items in sample["recommendations"].items():
            console.print(f"  [cyan]{source:>12}[/]: " + "; ".join(items))
    store.close()
    return {"counts": counts, "timings": timings, "samples": samples}


def sample_recommendations(
    store: Store, trained: dict[str, TrainResult], *, users: int = 3, k: int = 5
) -> list[dict[str, Any]]:
    """Top-k titles from each trained source for the most active users (for reports)."""
    from shoplm.recommend.base import CandidateSource

    if not trained:
        return []
    events = store.frame("events", ["user_id", "item_id", "ts_ms"])
    events = events[events["item_id"].notna()].sort_values("ts_ms", kind="stable")
    if events.empty:
        return []
    titles = store.catalog(["item_id", "title"]).set_index("item_id")["title"].to_dict()
    active = events["user_id"].value_counts().index[:users]
    samples = []
    for user in active:
        history = events.loc[events["user_id"] == user, "item_id"].tolist()[-20:]
        recs: dict[str, list[str]] = {}
        for name, result in trained.items():
            if isinstance(result.model, CandidateSource):
                top = result.model.recommend(history, k, exclude_seen=True)
                recs[name] = [titles.get(item, item)[:40] for item, _score in top]
        recent = [titles.get(item, item)[:40] for item in history[-3:]]
        samples.append({"user_id": user[:14], "recent": recent, "recommendations": recs})
    return samples


def _demo_files(source_dir: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for kind in INGEST_ORDER:
        for suffix in (".parquet", ".csv", ".jsonl"):
            candidate = source_dir / f"{kind}{suffix}"
            if candidate.exists():
                files[kind] = candidate
    return files


def _remove_sqlite(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)


def iter_progress(total: int) -> Iterator[int]:  # pragma: no cover - kept small on purpose
    yield from range(total)
