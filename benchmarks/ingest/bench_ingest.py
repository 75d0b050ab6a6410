"""Ingest throughput (rows/s) and peak memory for N behaviour events from CSV and Parquet.

Each format runs in a fresh process (so peak RSS is its own) against a fresh SQLite store.

    python benchmarks/ingest/bench_ingest.py --rows 1000000 [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EVENT_TYPES = np.array(["view", "click", "add_to_cart", "purchase"])


def make_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic events: 50k users, 20k items, one year, unique ids."""
    rng = np.random.default_rng(seed)
    start = 1_672_531_200  # 2023-01-01
    return pd.DataFrame(
        {
            "event_id": np.char.add("E", np.arange(rows).astype(str)),
            "user_id": np.char.add("CUST-", rng.integers(0, 50_000, rows).astype(str)),
            "item_id": np.char.add("SKU", rng.zipf(1.3, rows).clip(max=20_000).astype(str)),
            "event_type": EVENT_TYPES[rng.choice(4, rows, p=[0.7, 0.2, 0.07, 0.03])],
            "timestamp": start + np.sort(rng.integers(0, 365 * 86_400, rows)),
            "session_id": np.char.add("S", (np.arange(rows) // 8).astype(str)),
        }
    )


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would include the parent's peak:
    Linux carries it across exec, and the parent held the whole generated file."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_one(path: Path, data_dir: Path) -> dict[str, float]:
    from shoplm.config import Settings
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    settings = Settings(data_dir=data_dir, pseudonymization_key="bench")
    store = Store.open(settings.database_url)
    started = time.perf_counter()
    report = ingest("events", path, store=store, settings=settings)
    seconds = time.perf_counter() - started
    assert report.balanced and report.accepted == report.read, report.summary()
    return {
        "rows": report.read,
        "seconds": round(seconds, 2),
        "rows_per_second": round(report.read / seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", nargs=2, metavar=("FILE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]), Path(args.one[1]))))
        return
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frame = make_events(args.rows)
        frame.to_csv(work / "events.csv", index=False)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), work / "events.parquet")
        del frame
        for fmt in ("csv", "parquet"):
            path = work / f"events.{fmt}"
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(path), str(work / f"store-{fmt}")],
                capture_output=True,
                text=True,
                check=True,
            )
            results[fmt] = {
                **json.loads(out.stdout.strip().splitlines()[-1]),
                "file_mb": round(path.stat().st_size / 2**20, 1),
            }
            print(fmt, results[fmt], flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
