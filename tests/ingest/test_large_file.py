"""A 1,000,000-row file is streamed: memory stays bounded, every row is accounted for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHILD = """
import json, sys
from pathlib import Path
from shoplm.config import Settings
from shoplm.ingest.pipeline import ingest
from shoplm.store import Store
settings = Settings(data_dir=sys.argv[2], pseudonymization_key="k", ingest={"chunk_rows": 50_000})
store = Store.open(settings.database_url)
report = ingest("events", sys.argv[1], store=store, settings=settings)
# VmHWM is this process's own peak (ru_maxrss would include the parent's, carried across exec).
peak = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(json.dumps({**report.to_dict(), "rss_mb": peak / 1024}))
"""


def write_events(path: Path, rows: int, bad_every: int) -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20_000, rows)
    items = rng.integers(0, 5_000, rows)
    stamps = 1_700_000_000 + np.arange(rows)
    with path.open("w") as handle:
        handle.write("event_id,user_id,item_id,event_type,timestamp\n")
        block = 100_000
        for start in range(0, rows, block):
            end = min(rows, start + block)
            lines = [
                f"E{i},U{users[i]},I{items[i]},{'view' if i % bad_every else 'teleport'},{stamps[i]}\n"
                for i in range(start, end)
            ]
            handle.writelines(lines)


def run_child(path: Path, data_dir: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_million_rows_stream_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_events(small, 50_000, bad_every=1000)
    write_events(large, 1_000_000, bad_every=1000)
    base = run_child(small, tmp_path / "d-small")
    report = run_child(large, tmp_path / "d-large")
    assert report["read"] == 1_000_000
    assert report["rejected"] == 1_000  # every 1000th row has an unknown event type
    assert report["accepted"] + report["rejected"] + report["duplicates"] == report["read"]
    # Twenty times the rows must not mean much more memory than one chunk's worth.
    assert report["rss_mb"] - base["rss_mb"] < 250, (base["rss_mb"], report["rss_mb"])
