"""Sequential recommendation on a leave-one-out data set (Amazon Toys by default).

Thin command line around :func:`shoplm.recommend.bench.run_seqrec_benchmark` until it is
wired to ``shoplm bench seqrec``. See README.md beside this file for results.

    MALLOC_MMAP_THRESHOLD_=33554432 python benchmarks/seqrec/bench_seqrec.py \\
        --data ../shared/data/amazon-toys --out results.json --models shoplm-seq,shoplm-seq+cooc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shoplm.recommend.bench import DEFAULT_MODELS, run_seqrec_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/amazon-toys"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--max-minutes", type=float, default=15.0, help="training budget of each neural model")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="how --max-minutes is measured")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/seqrec"), help="item text embedding cache")
    parser.add_argument("--save-dir", type=Path, default=None, help="save every trained model here")
    parser.add_argument("--params", default="{}", help='JSON overrides per model, e.g. {"sasrec": {"d_model": 128}}')
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    history = parser.add_mutually_exclusive_group()
    history.add_argument(
        "--exclude-history", dest="protocol", action="store_const", const="exclude_history",
        help="rank without the user's history items (the published protocol; default)",
    )  # fmt: skip
    history.add_argument("--keep-history", dest="protocol", action="store_const", const="keep_history")
    parser.set_defaults(protocol="exclude_history")
    args = parser.parse_args()
    result = run_seqrec_benchmark(
        args.data,
        args.out,
        models=[m for m in args.models.split(",") if m],
        max_minutes=args.max_minutes,
        budget_clock=args.clock,
        cache_dir=args.cache_dir,
        save_dir=args.save_dir,
        params=json.loads(args.params),
        num_threads=args.threads,
        seed=args.seed,
        protocol=args.protocol,
    )
    keys = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "valid_NDCG@20", "train_seconds", "peak_rss_mb")
    other = "keep_history" if args.protocol == "exclude_history" else "exclude_history"
    print(f"{result['protocol']}; best by validation: {result['best']}")
    print("| model | " + " | ".join(keys) + f" | HR@20 {other} | NDCG@20 {other} |")
    print("|---" * (len(keys) + 3) + "|")
    for name, row in result["models"].items():
        cells = [str(row.get(k, "")) for k in keys] + [str(row[other]["HR@20"]), str(row[other]["NDCG@20"])]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
