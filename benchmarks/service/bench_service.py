"""Load benchmark of the HTTP service: recommendation latency at fixed rates and event ack latency.

Builds (once, cached in ``--data-dir``) a demo shop of 20,000 items, 5,000 users and 200,000
events, encoded and trained; starts ``shoplm serve`` on loopback; drives it with ``wrk``
(Debian package) through ``load.lua``, paced to a target rate; writes the figures as JSON.

Usage:
    python benchmarks/service/bench_service.py build --data-dir /tmp/shoplm-bench
    python benchmarks/service/bench_service.py run --data-dir /tmp/shoplm-bench --seconds 30

Every loop is bounded (number of runs, seconds per run); only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "shoplm-bench"  # pseudonymization key of the bench shop


def settings_for(data_dir: Path, **recommend: object):  # type: ignore[no-untyped-def]
    from shoplm.config import Settings

    return Settings(
        data_dir=data_dir,
        pseudonymization_key=KEY,
        recommend={"sequential_minutes": 2.0, **recommend},
        server={"rate_limit_per_second": 0},
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
    print(
        f"approximate embeddings of {len(catalog)} items from {len(unique)} texts in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )


def build(data_dir: Path, n_items: int, n_users: int, n_events: int, *, exact_embeddings: bool = False) -> None:
    """Generate, ingest, encode and train the bench shop (skips what is done already)."""
    from shoplm.app import jobs
    from shoplm.app.registry import ModelRegistry
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    settings = settings_for(data_dir)
    source = data_dir / "demo-source"
    started = time.perf_counter()
    if not (source / "ground_truth.json").exists():
        generate_demo_store(source, seed=0, sizes=DemoSizes(n_items=n_items, n_users=n_users, n_events=n_events))
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    store = Store.open(settings.database_url)
    files = jobs._demo_files(source)
    if store.count("items") < n_items:
        for kind in ("items", "users", "events"):
            print(ingest(kind, files[kind], store=store, settings=settings).summary(), flush=True)
    if ModelRegistry(settings.models_dir).current() is None:
        if exact_embeddings:
            encoded = jobs.encode_catalog(store, settings, progress=False)
            print(f"encoded {encoded.count} items in {encoded.seconds:.0f} s", flush=True)
        else:
            write_approximate_embeddings(store, settings)
        trained = jobs.train_recommenders(store, settings, on_step=lambda s: print("training", s, flush=True))
        print("trained", ", ".join(trained), flush=True)
    print(f"shop ready: {store.counts()} ({time.perf_counter() - started:.0f} s)", flush=True)
    store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _wrk(url: str, env: dict[str, str], *, rate: float, seconds: int, connections: int) -> dict[str, object]:
    """One paced wrk run; returns its JSON summary plus the achieved rate."""
    delay_ms = connections * 1000.0 / rate  # each connection waits this long between requests
    run_env = {**os.environ, **env, "DELAY_MS": f"{delay_ms:.3f}"}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "load.lua"), url]
    out = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    summary["achieved_rps"] = round(summary["requests"] / (summary["duration_us"] / 1e6), 1)
    summary["target_rps"] = rate
    return summary


def run(data_dir: Path, seconds: int, out: Path | None) -> dict[str, object]:
    """Start the server on the bench shop and measure; returns (and writes) the results."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    from shoplm.app.keys import KeyStore
    from shoplm.store import Store

    settings = settings_for(data_dir)
    store = Store.open(settings.database_url)
    secret = KeyStore(store).create("write", name="bench").secret
    store.close()
    raw_users = _raw_users(data_dir / "demo-source", 500)
    port = _free_port()
    env = {
        **os.environ,
        "SHOPLM_PSEUDONYMIZATION_KEY": KEY,
        "SHOPLM_SERVER__RATE_LIMIT_PER_SECOND": "0",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "shoplm.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {"items": None, "load_before": _loadavg(), "runs": []}
    try:
        _wait_ready(base, timeout=300)
        import httpx

        results["model_version"] = httpx.get(base + "/readyz").json()["model_version"]
        store = Store.open(settings.database_url)
        results["items"] = store.count("items")
        results["events"] = store.count("events")
        store.close()
        wrk_env = {"API_KEY": secret, "USERS": ",".join(raw_users), "RUN_ID": str(int(time.time()))}
        # Warm up: caches, the allocator, the first query paths.
        _wrk(base, {**wrk_env, "MODE": "recommend"}, rate=50, seconds=5, connections=4)
        plan = [
            ("GET /v1/recommendations", "recommend", 100, 8),
            ("GET /v1/recommendations", "recommend", 300, 16),
            ("POST /v1/events (1 event)", "events", 50, 4),
            ("POST /v1/events (20 events)", "events20", 20, 2),
        ]
        for label, mode, rate, connections in plan:  # bounded: four runs of `seconds` each
            load = _loadavg()
            summary = _wrk(base, {**wrk_env, "MODE": mode}, rate=rate, seconds=seconds, connections=connections)
            summary.update({"label": label, "load_before": load, "load_after": _loadavg()})
            results["runs"].append(summary)  # type: ignore[union-attr]
            print(_line(summary), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    results["load_after"] = _loadavg()
    results["cpus"] = os.cpu_count()
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    return results


def _line(s: dict[str, object]) -> str:
    def ms(key: str) -> str:
        return f"{float(s[key]) / 1000:.1f}"  # type: ignore[arg-type]

    return (
        f"{s['label']:<28} target {s['target_rps']:>5} rps, achieved {s['achieved_rps']:>6} rps | "
        f"p50 {ms('p50_us')} ms, p90 {ms('p90_us')} ms, p99 {ms('p99_us')} ms, max {ms('max_us')} ms | "
        f"non-2xx {s['errors_status']}, socket errors {s['errors_connect'] + s['errors_timeout']} | "  # type: ignore[operator]
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


def _wait_ready(base: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server at {base} not ready in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "run", "all"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/shoplm-bench"))
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=30, help="length of each measured run")
    parser.add_argument(
        "--exact-embeddings", action="store_true", help="encode every title (about an hour for 20k items on 2 cores)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    if args.step in ("build", "all"):
        build(args.data_dir, args.items, args.users, args.events, exact_embeddings=args.exact_embeddings)
    if args.step in ("run", "all"):
        run(args.data_dir, args.seconds, args.out)


if __name__ == "__main__":
    main()
