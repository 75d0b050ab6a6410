"""recommend() latency over a 20k-item catalog with a 50-event live session, and model load time.

A synthetic shop (clustered tastes, long-tailed popularity) is written to a fresh store; the
candidate sources, the sequential model (time-capped) and the ranker are trained and saved
through `shoplm.app.jobs.train_recommenders`; then:

- load: a fresh process imports shoplm and loads every model (`ShopRecommender.load`), timed
  (imports and load apart; which heavy libraries it imported);
- latency: `ShopRecommender.recommend(user, scene)` in-process, 50 newest events read live
  from the store per call, median / p95 / p99 over many users, per scene.

    python benchmarks/recommend/bench_latency.py [--items 20000] [--users 20000] [--events 400000]
        [--sequential-minutes 2] [--calls 2000] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LOAD_CHILD = """
import json, sys, time
started = time.perf_counter()
from shoplm.config import Settings
from shoplm.app.recommender import ShopRecommender
from shoplm.store import Store
imported = time.perf_counter()
settings = Settings(data_dir=sys.argv[1], pseudonymization_key="bench")
shop = ShopRecommender.load(Store.open(settings.database_url), settings)
done = time.perf_counter()
print(json.dumps({"total": done - started, "imports": imported - started, "load": done - imported,
                  "items": len(shop.engine.catalog), "sources": sorted(shop.engine.sources),
                  "heavy_imports": [m for m in ("torch", "lightgbm", "sklearn", "scipy") if m in sys.modules]}))
"""


def synthetic_shop(n_items: int, n_users: int, n_events: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_clusters = 50
    cluster = rng.integers(0, n_clusters, n_items)
    items = pd.DataFrame(
        {
            "item_id": [f"SKU{i:06d}" for i in range(n_items)],
            "title": [f"item {i} of kind {c}" for i, c in enumerate(cluster)],
            "category": [f"Cat{c % 20} > Kind{c}" for c in cluster],
            "price": rng.lognormal(3, 0.8, n_items).round(2),
            "stock": rng.integers(0, 50, n_items),
        }
    )
    by_cluster = [np.flatnonzero(cluster == c) for c in range(n_clusters)]
    popularity = [rng.zipf(1.5, len(members)).astype(float) for members in by_cluster]
    per_user = np.maximum(2, rng.poisson(n_events / n_users, n_users))
    rows = []
    start = 1_700_000_000_000
    for user, count in enumerate(per_user):
        tastes = rng.choice(n_clusters, 2, replace=False)
        picks = rng.choice(tastes, count)
        for step, c in enumerate(picks):
            p = popularity[c] / popularity[c].sum()
            rows.append((f"U{user}", f"SKU{rng.choice(by_cluster[c], p=p):06d}", start + user * 1_000 + step * 60_000))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(event_type="view")
    return items, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--sequential-minutes", type=float, default=2.0)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--load-runs", type=int, default=7, help="fresh processes that load the models")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from shoplm.app import jobs
    from shoplm.app.recommender import ShopRecommender
    from shoplm.config import Settings
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    results: dict[str, object] = {"items": args.items, "users": args.users}
    with tempfile.TemporaryDirectory() as tmp:
        # answer_cache 0: the engine's own time, every call computes (the service's per-history
        # answer cache is measured by benchmarks/service).
        settings = Settings(
            data_dir=Path(tmp),
            pseudonymization_key="bench",
            recommend={"sequential_minutes": args.sequential_minutes, "answer_cache": 0},
        )
        store = Store.open(settings.database_url)
        items, events = synthetic_shop(args.items, args.users, args.events)
        ingest("items", items, store=store, settings=settings)
        ingest("events", events, store=store, settings=settings)
        results["events"] = store.count("events")
        # Random unit vectors stand in for text embeddings: latency does not depend on their meaning.
        rng = np.random.default_rng(1)
        vectors = rng.normal(size=(args.items, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        path = jobs.embeddings_path(settings, "synthetic")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, item_ids=items["item_id"].to_numpy(dtype=np.str_), vectors=vectors)
        started = time.perf_counter()
        trained = jobs.train_recommenders(store, settings, on_step=lambda s: print("training", s, flush=True))
        results["train_seconds"] = {name: round(r.seconds, 1) for name, r in trained.items()}
        results["train_total_seconds"] = round(time.perf_counter() - started, 1)

        loads = []
        for _ in range(args.load_runs):
            out = subprocess.run([sys.executable, "-c", LOAD_CHILD, tmp], capture_output=True, text=True, check=True)
            loads.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results["load_seconds_fresh_process"] = {
            "median": round(statistics.median(r["total"] for r in loads), 3),
            "imports_median": round(statistics.median(r["imports"] for r in loads), 3),
            "load_median": round(statistics.median(r["load"] for r in loads), 3),
            "runs": [round(r["total"], 3) for r in loads],
            "heavy_imports": loads[0]["heavy_imports"],
        }
        print("fresh-process load", results["load_seconds_fresh_process"], flush=True)

        shop = ShopRecommender.load(store, settings)
        shop._encoder = _ConstantQuery(vectors[0])
        users = events["user_id"].drop_duplicates().sample(min(args.calls, args.users), random_state=0).tolist()
        heavy = events["user_id"].value_counts()
        users = [u for u in users if heavy[u] >= 10] or users
        latency: dict[str, dict[str, float]] = {}
        for scene, extra in (
            ("home", {}),
            ("item_detail", {"item_id": "SKU000001"}),
            ("cart", {"cart": ["SKU000001", "SKU000002"]}),
            ("search", {"query": "kind 3"}),
        ):
            for user in users[:50]:  # warm-up
                shop.recommend(user, scene=scene, k=10, **extra)
            timings = []
            for user in users:
                begin = time.perf_counter()
                shop.recommend(user, scene=scene, k=10, **extra)
                timings.append((time.perf_counter() - begin) * 1000)
            timings.sort()
            latency[scene] = {
                "median_ms": round(statistics.median(timings), 2),
                "p95_ms": round(timings[int(0.95 * len(timings))], 2),
                "p99_ms": round(timings[int(0.99 * len(timings))], 2),
                "calls": len(timings),
            }
            print(scene, latency[scene], flush=True)
        results["latency"] = latency
        results["history_length"] = shop.history_limit
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


class _ConstantQuery:
    """Stands in for the text encoder on search queries (the synthetic titles carry no meaning)."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        return np.tile(self.vector, (len(texts), 1))


if __name__ == "__main__":
    main()
