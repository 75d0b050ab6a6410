"""Load benchmark of the HTTP service: recommendation latency at fixed rates, event acknowledgement
latency alone and under recommendation load, for any source tree, worker count and database.

Builds (once, cached in ``--data-dir``) a demo shop of 20,000 items, 5,000 users and 200,000
events, trained; starts ``shoplm serve`` from a source tree on loopback; drives it with ``wrk``
(Debian package) through ``load.lua``, paced to target rates; writes every figure as JSON.
``compare`` runs several servers one after another in one command (the code before and after a
change, 1 worker and N workers, SQLite and PostgreSQL), so their figures come from one run.

Usage:
    python benchmarks/service/bench_service.py build --data-dir /tmp/shoplm-bench
    python benchmarks/service/bench_service.py run --data-dir /tmp/shoplm-bench --workers 2 --seconds 20
    python benchmarks/service/bench_service.py compare --config compare.json --seconds 20 --out results.json

Every loop is bounded (runs, seconds per run); only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEY = "shoplm-bench"  # pseudonymization key of the bench shop

#: (label, wrk mode, target rate, connections) of the recommendation and event runs.
PLAN = [
    ("GET /v1/recommendations", "recommend", 100, 8),
    ("GET /v1/recommendations", "recommend", 300, 16),
    ("POST /v1/events (1 event)", "events", 100, 8),
]
#: Events at 100/s measured while recommendations run at 200/s (two wrk processes at once).
MIXED = (("recommend", 200, 12), ("events", 100, 8))


def settings_for(data_dir: Path, database_url: str | None = None, **recommend: object):  # type: ignore[no-untyped-def]
    from shoplm.config import Settings

    extra = {"database_url": database_url} if database_url else {}
    return Settings(
        data_dir=data_dir,
        pseudonymization_key=KEY,
        recommend={"sequential_minutes": 2.0, **recommend},
        server={"rate_limit_per_second": 0},
        **extra,
    )


def write_approximate_embeddings(store, settings) -> None:  # type: ignore[no-untyped-def]
    """Item vectors from the encoder's vector of "brand | category", plus a little per-item noise.

    Encoding 20,000 distinct titles takes about an hour on 2 busy cores; serving latency depends
    on how many items every source scores, not on what the vectors mean, so the benchmark
    encodes the 82 brand/category texts and spreads each item around its own (seeded noise).
    """
    import numpy as np

    from shoplm.app import jobs
    from shoplm.lm import load_encoder

    started = time.perf_counter()
    catalog = store.items.catalog(["item_id", "brand", "category"])
    texts = (catalog["brand"].fillna("") + " | " + catalog["category"].fillna("")).tolist()
    unique = sorted(set(texts))
    encoder = load_encoder(settings)
    base = dict(zip(unique, encoder.encode(unique, mode="passage"), strict=True))
    rng = np.random.default_rng(0)
    vectors = np.stack([base[t] for t in texts]).astype(np.float32)
    vectors += rng.normal(0, 0.03, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = jobs.embeddings_path(settings, encoder.model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, item_ids=catalog["item_id"].to_numpy(dtype=np.str_), vectors=vectors)
    print(f"approximate embeddings of {len(catalog)} items from {len(unique)} texts in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip


def build(
    data_dir: Path,
    n_items: int,
    n_users: int,
    n_events: int,
    *,
    exact_embeddings: bool = False,
    database_url: str | None = None,
    models_from: Path | None = None,
) -> None:
    """Generate, ingest, encode and train the bench shop (skips what is done already).

    ``models_from`` copies the embeddings and models of a shop built from the same data (the
    same seed and key), so a second database gets the same models without training again.
    """
    from shoplm.app import jobs
    from shoplm.app.registry import ModelRegistry
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    settings = settings_for(data_dir, database_url)
    source = data_dir / "demo-source"
    started = time.perf_counter()
    if models_from is not None and not source.exists():
        shutil.copytree(models_from / "demo-source", source)
    if not (source / "ground_truth.json").exists():
        generate_demo_store(source, seed=0, sizes=DemoSizes(n_items=n_items, n_users=n_users, n_events=n_events))
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    store = Store.open(settings.database_url)
    files = jobs.demo_files(source)
    if store.count("items") < n_items:
        for kind in ("items", "users", "events"):
            print(ingest(kind, files[kind], store=store, settings=settings).summary(), flush=True)
    if ModelRegistry(settings.models_dir).current() is None:
        if models_from is not None:
            for part in ("models", "embeddings"):
                shutil.copytree(models_from / part, data_dir / part, dirs_exist_ok=True)
        elif exact_embeddings:
            encoded = jobs.encode_catalog(store, settings, progress=False)
            print(f"encoded {encoded.count} items in {encoded.seconds:.0f} s", flush=True)
            jobs.train_recommenders(store, settings, on_step=lambda s: print("training", s, flush=True))
        else:
            write_approximate_embeddings(store, settings)
            jobs.train_recommenders(store, settings, on_step=lambda s: print("training", s, flush=True))
    assistant_models = data_dir / "models" / "assistant"
    if not assistant_models.exists():
        if models_from is not None and (models_from / "models" / "assistant").exists():
            shutil.copytree(models_from / "models" / "assistant", assistant_models)
        else:  # the service serves the assistant too: its load time is part of the fresh-process figure
            from shoplm.assistant.training import train_assistant

            trained = train_assistant(settings)
            print(f"assistant trained in {trained.seconds:.0f} s", flush=True)
    print(f"shop ready: {store.counts()} ({time.perf_counter() - started:.0f} s)", flush=True)
    store.close()


# -- running a server --------------------------------------------------------------------------
#: A fresh process loads what the service serves, timed: imports, the recommender, the assistant.
#: Written for the application floor (shoplm.app) and for the code before it (shoplm.recommend.live).
LOAD_CHILD = """
import json, sys, time
started = time.perf_counter()
from shoplm.config import Settings
from shoplm.store import Store
try:
    from shoplm.app.recommender import ShopRecommender
    old = False
except ImportError:
    from shoplm.recommend.live import ShopRecommender
    old = True
imported = time.perf_counter()
settings = Settings(data_dir=sys.argv[1])
store = Store.open(settings.database_url)
shop = ShopRecommender.load(store, settings)
recommender = time.perf_counter()
if old:  # models were properties loaded on first read
    from shoplm.assistant.dialogue import Assistant
    from shoplm.serve.chat import _LAZY_PARTS
    bot = Assistant(store, settings, recommender=shop.recommend)
    for part in _LAZY_PARTS:
        if isinstance(getattr(type(bot), part, None), property):
            getattr(bot, part)
else:
    from shoplm.app.assistant import Assistant
    bot = Assistant.load(store, settings, recommender=shop.recommend)
done = time.perf_counter()
print(json.dumps({"imports": imported - started, "recommender": recommender - started, "everything": done - started,
                  "heavy_imports": [m for m in ("torch", "lightgbm", "sklearn", "transformers") if m in sys.modules]}))
"""


def fresh_load(src: Path, data_dir: Path, database_url: str | None, runs: int = 5) -> dict[str, Any]:
    """Median seconds for a fresh process to import and load the recommender, and everything served.

    ``imports``: what the recommender needs; ``recommender``: that plus ``ShopRecommender.load``;
    ``everything``: plus the assistant's imports and models (intent and sentiment models,
    policies, the encoder). Each run is a new interpreter.
    """
    env = _environment(src, database_url)
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_CHILD, str(data_dir)], env=env, capture_output=True, text=True, timeout=600
        )
        if out.returncode != 0:
            raise RuntimeError(f"loading failed: {out.stderr[-2000:]}")
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary: dict[str, Any] = {
        key: round(statistics.median(s[key] for s in samples), 2) for key in ("imports", "recommender", "everything")
    }
    summary["runs"] = [{k: round(v, 2) if isinstance(v, float) else v for k, v in s.items()} for s in samples]
    return summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _environment(src: Path, database_url: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLM_")}
    env.update(
        {
            "PYTHONPATH": str(src),
            "SHOPLM_PSEUDONYMIZATION_KEY": KEY,
            "SHOPLM_SERVER__RATE_LIMIT_PER_SECOND": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    if database_url:
        env["SHOPLM_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def _create_key(env: dict[str, str], data_dir: Path) -> str:
    """A write key, made with the served source tree's own key store."""
    code = (
        "import sys\n"
        "from shoplm.config import Settings\n"
        "from shoplm.store import Store\n"
        "try:\n    from shoplm.app.keys import KeyStore\n"
        "except ImportError:  # the code before the application floor\n    from shoplm.serve.auth import KeyStore\n"
        "settings = Settings(data_dir=sys.argv[1])\n"
        "print(KeyStore(Store.open(settings.database_url)).create('write', name='bench').secret)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return out.stdout.strip().splitlines()[-1]


class Server:
    """``shoplm serve`` of a source tree in a subprocess (``workers``: None for code without the option)."""

    def __init__(
        self, src: Path, data_dir: Path, *, workers: int | None, database_url: str | None, env: dict[str, str] | None
    ) -> None:
        self.env = _environment(src, database_url, env)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "shoplm.cli", "serve", "--data-dir", str(data_dir), "--port", str(self.port)]
        if workers is not None:
            command += ["--workers", str(workers)]
        self.log = Path(tempfile.mkstemp(prefix="shoplm-bench-server-", suffix=".log")[1])
        self.started = time.monotonic()
        with self.log.open("w") as handle:
            self.proc = subprocess.Popen(
                [*command, "--log-level", "warning"], env=self.env, stdout=handle, stderr=handle
            )

    def wait_ready(self, timeout: float = 300) -> float:
        """Seconds from the start of the process until ``/readyz`` first answers 200 (models loaded)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    ready = time.monotonic() - self.started
                    time.sleep(3)  # every worker loads its models; the first ready one answered
                    return ready
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server at {self.base} not ready in {timeout} s")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wrk_command(url: str, *, rate: float, seconds: int, connections: int) -> tuple[list[str], str]:
    delay_ms = connections * 1000.0 / rate  # each connection waits this long between requests
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "load.lua"), url]
    return command, f"{delay_ms:.3f}"


def _summary(stdout: str, rate: float) -> dict[str, Any]:
    summary = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    summary["achieved_rps"] = round(summary["requests"] / (summary["duration_us"] / 1e6), 1)
    summary["target_rps"] = rate
    return summary


def _wrk(url: str, env: dict[str, str], *, rate: float, seconds: int, connections: int) -> dict[str, Any]:
    """One paced wrk run; returns its JSON summary plus the achieved rate."""
    command, delay = _wrk_command(url, rate=rate, seconds=seconds, connections=connections)
    run = subprocess.run(
        command, env={**os.environ, **env, "DELAY_MS": delay}, capture_output=True, text=True, timeout=seconds + 60
    )
    return _summary(run.stdout, rate)


def _wrk_together(url: str, env: dict[str, str], runs: tuple[tuple[str, float, int], ...], seconds: int) -> list:
    """Several paced wrk runs at the same time (one process each)."""
    procs = []
    for mode, rate, connections in runs:
        command, delay = _wrk_command(url, rate=rate, seconds=seconds, connections=connections)
        run_env = {**os.environ, **env, "MODE": mode, "DELAY_MS": delay, "RUN_ID": f"{env['RUN_ID']}{mode}"}
        procs.append((subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE, text=True), rate))
    return [_summary(proc.communicate(timeout=seconds + 60)[0], rate) for proc, rate in procs]


def run(
    data_dir: Path,
    seconds: int,
    *,
    src: Path = ROOT / "src",
    workers: int | None = None,
    database_url: str | None = None,
    label: str = "",
    load_runs: int = 5,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Time fresh-process loads (:func:`fresh_load`), then start a server on the bench shop and
    measure every run of :data:`PLAN` and :data:`MIXED`."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    results: dict[str, Any] = {"label": label, "src": str(src), "workers": workers, "env": env or {}, "runs": []}
    results["database"] = "postgresql" if database_url and database_url.startswith("postgres") else "sqlite"
    if load_runs > 0:
        results["fresh_load_seconds"] = fresh_load(src, data_dir, database_url, load_runs)
        print(f"{label:<28}fresh-process load: {results['fresh_load_seconds']}", flush=True)
    server = Server(src, data_dir, workers=workers, database_url=database_url, env=env)
    try:
        results["ready_seconds"] = round(server.wait_ready(), 2)
        env = {
            "API_KEY": _create_key(server.env, data_dir),
            "USERS": ",".join(_raw_users(data_dir / "demo-source", 500)),
            "RUN_ID": str(int(time.time() * 1000)),
        }
        # Warm up: caches, the allocator, the first query paths (20 s: every user seen by every worker).
        _wrk(server.base, {**env, "MODE": "recommend"}, rate=100, seconds=20, connections=8)
        for name, mode, rate, connections in PLAN:  # bounded: one run of `seconds` each
            load = _loadavg()
            summary = _wrk(server.base, {**env, "MODE": mode}, rate=rate, seconds=seconds, connections=connections)
            summary.update({"label": name, "load_before": load, "load_after": _loadavg()})
            results["runs"].append(summary)
            print(f"{label:<28}" + _line(summary), flush=True)
        load = _loadavg()
        for summary, (mode, _rate, _c) in zip(_wrk_together(server.base, env, MIXED, seconds), MIXED, strict=True):
            name = "GET /v1/recommendations" if mode == "recommend" else "POST /v1/events (1 event)"
            summary.update({"label": f"{name}, mixed", "load_before": load, "load_after": _loadavg()})
            results["runs"].append(summary)
            print(f"{label:<28}" + _line(summary), flush=True)
    finally:
        server.stop()
    return results


def _line(s: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{float(s[key]) / 1000:.1f}"

    return (
        f"{s['label']:<36} target {s['target_rps']:>5} rps, achieved {s['achieved_rps']:>6} rps | "
        f"p50 {ms('p50_us')} ms, p90 {ms('p90_us')} ms, p99 {ms('p99_us')} ms, max {ms('max_us')} ms | "
        f"non-2xx {s['errors_status']}, socket errors {s['errors_connect'] + s['errors_timeout'] + s['errors_read']} | "
        f"load {s['load_before']} -> {s['load_after']}"
    )


def _raw_users(source: Path, n: int) -> list[str]:
    import pandas as pd

    for name in ("users.csv", "users.parquet"):
        path = source / name
        if path.exists():
            frame = pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path)
            return frame["user_id"].astype(str).head(n).tolist()
    return [f"U{i:05d}" for i in range(n)]


def compare(config: Path, seconds: int, out: Path | None) -> list[dict[str, Any]]:
    """Every server of ``config`` (a JSON list of ``run`` arguments), one after another, in one run.

    Example config entry: ``{"label": "before, 1 process", "src": "/tmp/before/src",
    "data_dir": "/tmp/bench-before", "workers": null, "database_url": null}``; optional keys:
    ``"env"`` (extra environment of the server, e.g. ``{"SHOPLM_RECOMMEND__ANSWER_CACHE": "0"}``)
    and ``"load_runs"`` (fresh-process loads timed first; 0 skips them).
    """
    results = []
    for entry in json.loads(config.read_text()):
        results.append(
            run(
                Path(entry["data_dir"]),
                seconds,
                src=Path(entry.get("src") or ROOT / "src"),
                workers=entry.get("workers"),
                database_url=entry.get("database_url"),
                label=entry.get("label", ""),
                load_runs=entry.get("load_runs", 5),
                env=entry.get("env"),
            )
        )
        if out is not None:  # written after every server: a long comparison keeps what it measured
            out.write_text(json.dumps({"cpus": os.cpu_count(), "servers": results}, indent=2))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "run", "compare"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/shoplm-bench"))
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to serve (run)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (run; omit for old code)")
    parser.add_argument("--database-url", default=None, help="e.g. postgresql://... (default: SQLite in data dir)")
    parser.add_argument("--models-from", type=Path, default=None, help="build: copy models of this bench shop")
    parser.add_argument("--config", type=Path, help="compare: a JSON list of servers")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=20, help="length of each measured run")
    parser.add_argument(
        "--exact-embeddings", action="store_true", help="encode every title (about an hour for 20k items on 2 cores)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    if args.step == "build":
        build(
            args.data_dir,
            args.items,
            args.users,
            args.events,
            exact_embeddings=args.exact_embeddings,
            database_url=args.database_url,
            models_from=args.models_from,
        )
    elif args.step == "run":
        result = run(args.data_dir, args.seconds, src=args.src, workers=args.workers, database_url=args.database_url)
        args.out.write_text(json.dumps({"cpus": os.cpu_count(), "servers": [result]}, indent=2))
    else:
        compare(args.config, args.seconds, args.out)


if __name__ == "__main__":
    main()
