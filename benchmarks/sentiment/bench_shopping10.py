"""The second sentiment benchmark: online_shopping_10_cats, split by text hash, accuracy per category.

    OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/sentiment/bench_shopping10.py \
        --data ../shared/data --per-cat 100 --out benchmarks/sentiment/shopping10.json

Exact duplicate texts are dropped (every copy of a text carrying both labels), the rest split by
a hash of the text (20% test), so no text is on both sides. ``--per-cat`` keeps the first N
training and N/2 test texts of each category by hash (a fixed uniform sample; embedding all
62k texts takes hours on this shared machine). The two split files are written beside ``--out``
and scored by ``shoplm bench sentiment --mode ensemble`` (the same code): the ``fused`` member is
the plain ``shoplm bench sentiment`` model, the baseline of the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shoplm.insight.sentiment_bench import run_sentiment_ensemble_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import read_shopping10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-cat", type=int, default=100, help="training texts per category (0: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sentiment/shopping10.json"))
    parser.add_argument("--cache-dir", type=Path, default=Path("shoplm-data/cache/embeddings"))
    parser.add_argument("--members", default="fused,e5,ngram")
    args = parser.parse_args()
    frame = read_shopping10(args.data, per_cat=args.per_cat or None)
    split_dir = args.out.parent / "splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "test"):
        paths[split] = split_dir / f"shopping10_{split}_{args.per_cat}.csv"
        frame[frame["split"] == split][["label", "cat", "text"]].to_csv(paths[split], index=False)
    print(f"{(frame['split'] == 'train').sum():,} train / {(frame['split'] == 'test').sum():,} test", file=sys.stderr)
    report = run_sentiment_ensemble_benchmark(
        paths["train"],
        paths["test"],
        group_col="cat",
        out=args.out,
        members=tuple(args.members.split(",")),
        cache_dir=args.cache_dir,
    )
    for name, scores in [*report["members"].items(), ("ensemble", report["ensemble"])]:
        per_cat = {cat: round(v["accuracy"], 3) for cat, v in scores["per_group"].items()}
        print(f"{name}: {scores['accuracy']:.4f} {per_cat}")


if __name__ == "__main__":
    main()
