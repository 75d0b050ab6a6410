"""Fill the embedding cache with the sentiment benchmarks' texts ahead of time (resumable, one thread).

    OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/sentiment/warm_cache.py \
        --data ../shared/data --cache-dir shoplm-data/cache/embeddings

Each text is cached twice over at most: as the benchmark reads it (``TextClassifier``'s own cut at
2,000 characters) and as the product reads it (:func:`shoplm.insight.sentiment.prepare_review`);
the two are the same text for all but a few dozen reviews, which the cache stores once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shoplm.insight.sentiment import prepare_review
from shoplm.lm import CachedEncoder, load_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import read_chnsenticorp, read_custrev, read_shopping10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache-dir", type=Path, default=Path("shoplm-data/cache/embeddings"))
    parser.add_argument("--only", default="", help="comma-separated subset: chnsenticorp_dev,custrev,...")
    parser.add_argument("--shopping10-per-cat", type=int, default=600)
    parser.add_argument("--chunk", type=int, default=200)
    args = parser.parse_args()
    encoder = CachedEncoder(load_encoder("e5-onnx", cache=False, threads=1), args.cache_dir)
    sets = [
        ("chnsenticorp_dev", read_chnsenticorp(args.data, "dev")["text"].tolist()),
        ("custrev", read_custrev(args.data)["text"].tolist()),
        ("chnsenticorp_train", read_chnsenticorp(args.data, "train")["text"].tolist()),
        ("shopping10", read_shopping10(args.data, per_cat=args.shopping10_per_cat)["text"].tolist()),
    ]
    wanted = {s for s in args.only.split(",") if s}
    for name, texts in sets:
        if wanted and name not in wanted:
            continue
        both = list(dict.fromkeys([str(t)[:2000] for t in texts] + [prepare_review(t).text for t in texts]))
        both = [t for t in both if t]
        start = time.perf_counter()
        for offset in range(0, len(both), args.chunk):
            encoder.encode(both[offset : offset + args.chunk], mode="query")
            done = min(offset + args.chunk, len(both))
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"{name}: {done}/{len(both)} texts, {rate:.1f}/s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
