"""Scaling table of the batch stages: here (one process) vs Ray with 1 worker vs Ray with 2 workers.

Every stage runs the very functions ``shoplm encode|train|precompute|forecast --ray`` run
(:mod:`shoplm.app.batch`, :func:`shoplm.app.analytics.run_forecast`'s per-group task), through
:func:`shoplm.fanout.map_chunks`; "local" is the same chunks one after another in this process.

- encode: real item titles (amazon-games, then amazon-toys) with the shop's encoder (e5-onnx),
  one thread per worker, each worker loading the model once (its load is in the time);
- prepare: the training interactions of 1M synthetic events (100k items, power-law
  popularity), in chunks of users;
- score: home candidate lists of a sample of the synthetic users, by the cheap sources fitted
  on those events with random item vectors (approximate embeddings, 384-d) in place of text;
- forecast: weekly per-SKU forecasts of Online Retail's top SKUs, in groups.

Each result is checked against the local one (vectors within float tolerance, everything else
equal). Wall time includes Ray's per-job overheads (shipping chunks, workers importing shoplm,
loading models); starting Ray itself is timed apart. Memory: the peak resident memory of this
process and all its children (Ray's GCS, raylet and workers) during the stage, sampled every
0.2 s (the sum of RSS counts shared pages once per process, so it overstates Ray's share).

    nice -n 5 .venv/bin/python benchmarks/scale/bench_scale.py --out benchmarks/scale/scale.json

``--quick`` runs a small version (a smoke test of the script, about a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread per worker, here too: a fair baseline
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import psutil

from shoplm.app import batch
from shoplm.config import EncoderSettings, Settings
from shoplm.fanout import chunked, map_chunks
from shoplm.interactions import Interactions

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MODES = {"local": 0, "ray-1": 1, "ray-2": 2}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- data --------------------------------------------------------------------------------------
def synthetic_shop(n_events: int, n_items: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A catalog with power-law popularity and ``n_events`` events of users with a home category.

    Half of a user's events pick an item of the user's home category, half any item, both by
    popularity (Zipf-like, exponent 1.05), so co-occurrence and factor models find structure.
    """
    rng = np.random.default_rng(seed)
    n_categories = 200
    item_ids = np.array([f"I{i:06d}" for i in range(n_items)])
    category = rng.zipf(1.6, n_items) % n_categories
    popularity = 1.0 / (rng.permutation(n_items) + 10.0) ** 1.05
    catalog = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": "",
            "category": [f"c{c:03d}" for c in category],
            "brand": [f"b{b:04d}" for b in rng.integers(0, 2_000, n_items)],
            "price": np.round(rng.lognormal(3.0, 0.8, n_items), 2),
            "stock": rng.integers(0, 200, n_items),
            "language": "en",
        }
    )
    n_users = max(1, n_events // 20)
    activity = rng.lognormal(0.0, 1.0, n_users)
    per_user = rng.multinomial(n_events, activity / activity.sum())
    users = np.repeat(np.arange(n_users), per_user)
    home = rng.integers(0, n_categories, n_users)[users]
    items = rng.choice(n_items, size=n_events, p=popularity / popularity.sum())
    by_home = rng.random(n_events) < 0.5
    order = np.argsort(category, kind="stable")
    starts = np.searchsorted(category[order], np.arange(n_categories + 1))
    for c in range(n_categories):
        members = order[starts[c] : starts[c + 1]]
        rows = np.flatnonzero(by_home & (home == c))
        if len(members) and len(rows):
            weights = popularity[members] / popularity[members].sum()
            items[rows] = members[rng.choice(len(members), size=len(rows), p=weights)]
    kinds = rng.choice(["view", "add_to_cart", "purchase"], size=n_events, p=[0.8, 0.12, 0.08])
    ts = 1_700_000_000_000 + rng.integers(0, 365 * 86_400_000, n_events)
    events = pd.DataFrame(
        {"user_id": [f"U{u:07d}" for u in users], "item_id": item_ids[items], "event_type": kinds, "ts_ms": ts}
    )
    return events.sample(frac=1.0, random_state=seed).reset_index(drop=True), catalog


def real_titles(n: int) -> list[str]:
    """``n`` distinct product titles: amazon-games' full titles, then amazon-toys' title prefixes."""
    titles: list[str] = []
    for path in (DATA / "amazon-games" / "items.tsv", DATA / "amazon-toys" / "items.tsv"):
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        titles.extend(t.strip() for t in frame.iloc[:, -1] if t.strip())
    distinct = list(dict.fromkeys(titles))
    if len(distinct) < n:
        raise SystemExit(f"only {len(distinct)} distinct titles in {DATA}: ask for fewer")
    return distinct[:n]


# -- measuring ------------------------------------------------------------------------------
class TreeMemory:
    """Peak summed RSS (MB) of this process and its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> float:
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a worker may exit between listing and reading
                total += process.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    with TreeMemory() as memory:
        started = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - started
    return result, seconds, memory.peak


def start_ray(workers: int) -> float:
    import ray

    started = time.perf_counter()
    path = os.pathsep.join(p for p in sys.path if p)
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=2 * 2**30,
        runtime_env={"env_vars": {"PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}},
    )
    return time.perf_counter() - started


# -- the stages -----------------------------------------------------------------------------
def fit_scoring_models(events: pd.DataFrame, catalog: pd.DataFrame, root: Path, seed: int) -> dict[str, float]:
    """Fit the cheap sources on the events with random item vectors; save them as a model version."""
    from shoplm.recommend.components import SOURCES, TrainingInputs

    interactions = Interactions.from_frame(events)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(catalog), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    inputs = TrainingInputs(
        interactions=interactions,
        categories=dict(zip(catalog["item_id"], catalog["category"], strict=True)),
        item_ids=catalog["item_id"].to_numpy(dtype=np.str_),
        vectors=vectors,
        seed=seed,
        threads=1,
    )
    seconds = {}
    for name, component in SOURCES.items():
        if component.budgeted or not component.can_fit(inputs):
            continue
        log(f"  fitting {name}")
        started = time.perf_counter()
        component.fit(inputs).save(root / name)
        seconds[name] = round(time.perf_counter() - started, 2)
    return seconds


def scoring_cases(events: pd.DataFrame, n_users: int, history_length: int, seed: int) -> list[tuple]:
    """``(user, history, purchased)`` of ``n_users`` sampled users, as the store would give them."""
    from shoplm.app.recommender import split_history

    rng = np.random.default_rng(seed + 1)
    users = np.unique(events["user_id"].to_numpy())
    chosen = set(rng.choice(users, size=min(n_users, len(users)), replace=False).tolist())
    sample = events[events["user_id"].isin(chosen)].sort_values(["user_id", "ts_ms"], kind="stable")
    cases = []
    for user, group in sample.groupby("user_id", sort=True):
        rows = list(zip(group["item_id"], group["event_type"], strict=True))[-history_length:]
        cases.append((str(user), *split_history(rows)))
    return cases


def forecast_tasks(n_skus: int, n_tasks: int) -> list[dict[str, Any]]:
    """The per-group forecast tasks of ``run_forecast`` over Online Retail's top SKUs by revenue."""
    from shoplm.forecast import weekly_demand
    from shoplm.ingest.transactions import read_retail_transactions

    frame = read_retail_transactions(DATA / "retail" / "online_retail.csv.gz").frame
    panel = weekly_demand(frame)
    top = panel.items.sort_values("revenue", ascending=False, kind="stable")["item_id"].head(n_skus).tolist()
    # Online Retail has no categories: the stock code's first three characters stand in for one.
    categories = {sku: str(sku)[:3] for sku in top}
    groups: dict[str, list[str]] = {}
    for sku in top:
        groups.setdefault(categories[sku], []).append(sku)
    buckets: list[list[str]] = [[] for _ in range(n_tasks)]
    for members in sorted(groups.values(), key=len, reverse=True):
        min(buckets, key=len).extend(members)
    return [
        {"panel": panel, "horizon": 8, "skus": group, "categories": {s: categories[s] for s in group}}
        for group in buckets
        if group
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shoplm.app.analytics import _forecast_chunk  # the task run_forecast fans out

    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": {
            "events": args.events,
            "items": args.items,
            "titles": args.titles,
            "scored_users": args.score_users,
            "skus": args.skus,
        },
        "stages": {},
        "ray_start_seconds": {},
    }
    log(f"generating {args.events:,} events over {args.items:,} items")
    events, catalog = synthetic_shop(args.events, args.items, args.seed)
    report["sizes"]["users"] = int(events["user_id"].nunique())
    titles = real_titles(args.titles)
    work = Path(tempfile.mkdtemp(prefix="shoplm-scale-"))
    try:
        log("fitting the scoring models (cheap sources, random item vectors)")
        version = work / "version"
        started = time.perf_counter()
        report["fit_seconds"] = fit_scoring_models(events, catalog, version, args.seed)
        report["fit_seconds"]["total"] = round(time.perf_counter() - started, 2)
        settings = Settings(data_dir=work / "data")
        cases = scoring_cases(events, args.score_users, settings.recommend.history_length, args.seed)
        tasks = forecast_tasks(args.skus, 8)
        encoder = EncoderSettings(name=args.encoder)
        results: dict[str, dict[str, Any]] = {}
        for mode in args.modes:
            workers = MODES[mode]
            address = None
            if workers:
                report["ray_start_seconds"][mode] = round(start_ray(workers), 2)
                address = "local"
            log(f"{mode}: encoding {len(titles):,} titles")
            fanned = batch.FannedOutEncoder(encoder, ray_address=address, chunk_size=250, threads=1)
            vectors, s_enc, m_enc = timed(lambda f=fanned: f.encode(titles))
            log(f"{mode}: encode {s_enc:.1f} s; preparing {len(events):,} events")
            prepared, s_prep, m_prep = timed(
                lambda a=address: batch.prepare_interactions(events, n_tasks=8, ray_address=a)
            )
            log(f"{mode}: prepare {s_prep:.1f} s; scoring {len(cases):,} users")
            job = batch.ScoringJob(uuid.uuid4().hex, str(version), catalog, settings, k=10)
            chunks = chunked(cases, max(1, len(cases) // 500))
            scored, s_score, m_score = timed(
                lambda a=address, j=job, c=chunks: map_chunks(batch.score_users, c, shared=j, ray_address=a)
            )
            log(f"{mode}: score {s_score:.1f} s; forecasting {args.skus} SKUs")
            forecast, s_fc, m_fc = timed(lambda a=address: map_chunks(_forecast_chunk, tasks, ray_address=a))
            log(f"{mode}: forecast {s_fc:.1f} s")
            results[mode] = {
                "encode": (vectors, s_enc, m_enc, len(titles)),
                "prepare": (prepared, s_prep, m_prep, len(events)),
                "score": ([row for part in scored for row in part], s_score, m_score, len(cases)),
                "forecast": (pd.concat(forecast, ignore_index=True), s_fc, m_fc, args.skus),
            }
            if workers:
                import ray

                ray.shutdown()
                batch._WORKER_ENGINE.clear()
            if args.out:  # what is done so far survives an interrupted run
                partial = {**report, "stages": summarize(results), "partial": True}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(partial, indent=2) + "\n")
        report["stages"] = summarize(results)
        report["partial"] = False
        report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


UNITS = {"encode": "titles", "prepare": "events", "score": "users", "forecast": "SKUs"}


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per stage and mode: seconds, throughput, speed-up over local, peak memory, equal to local."""
    out: dict[str, Any] = {}
    base_mode = next(iter(results))
    for stage, unit in UNITS.items():
        base_value, base_seconds = results[base_mode][stage][0], results[base_mode][stage][1]
        rows = {}
        for mode, stages in results.items():
            value, seconds, memory, count = stages[stage]
            rows[mode] = {
                "seconds": round(seconds, 2),
                f"{unit}_per_s": round(count / seconds, 1),
                "speedup": round(base_seconds / seconds, 2),
                "peak_memory_mb": round(memory),
                "same_as_local": same(stage, base_value, value),
            }
        out[stage] = {"unit": unit, "count": results[base_mode][stage][3], "modes": rows}
    return out


def same(stage: str, a: Any, b: Any) -> bool | float:
    if stage == "encode":
        return float(np.abs(a - b).max())  # max abs difference of the vectors
    if stage == "prepare":
        return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("user_id", "item_id", "ts_ms", "weight"))
    if stage == "forecast":
        return bool(a.equals(b))
    return a == b


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(report["stages"])
    modes = list(next(iter(report["stages"].values()))["modes"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        speed = [report["stages"][s]["modes"][mode]["speedup"] for s in stages]
        memory = [report["stages"][s]["modes"][mode]["peak_memory_mb"] for s in stages]
        x = np.arange(len(stages)) + i * width
        axes[0].bar(x, speed, width, label=mode)
        axes[1].bar(x, memory, width, label=mode)
    titles = ("speed-up over local (1 process)", "peak memory, MB (process tree RSS)")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_xticks(np.arange(len(stages)) + width * (len(modes) - 1) / 2)
        axis.set_xticklabels([f"{s}\n({report['stages'][s]['count']:,} {report['stages'][s]['unit']})" for s in stages])
        axis.set_title(title)
        axis.legend()
    axes[0].axhline(1.0, color="grey", linewidth=0.8)
    fig.suptitle(f"shoplm batch stages on {report['machine']['cpus']} cores: local vs Ray 1 and 2 workers")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/scale/scale.json"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--titles", type=int, default=20_000)
    parser.add_argument("--score-users", type=int, default=10_000)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--encoder", default="e5-onnx")
    parser.add_argument("--modes", default="local,ray-1,ray-2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",")]
    if unknown := [m for m in args.modes if m not in MODES]:
        parser.error(f"unknown mode(s) {unknown}: use {', '.join(MODES)}")
    if args.quick:
        args.events, args.items, args.titles, args.score_users, args.skus = 50_000, 5_000, 300, 300, 40
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    chart(report, args.out.with_suffix(".png"))
    log(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    print(json.dumps(report["stages"], indent=1))


if __name__ == "__main__":
    main()
