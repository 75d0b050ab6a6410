"""Basket rules against popularity and co-occurrence: the same run as ``shoplm bench basket``.

Usage:
    python benchmarks/basket/bench_basket.py --data ../shared/data/retail/online_retail.csv.gz \
        --out benchmarks/basket/online_retail.json
"""

from __future__ import annotations

import argparse
import json
import sys

from shoplm.segments.bench import run_basket_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an Online Retail-layout CSV(.gz)")
    parser.add_argument("--out", default=None, help="results JSON (the chart goes beside it, .png)")
    parser.add_argument("--min-support", type=float, default=None, help="default: chosen on validation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = run_basket_benchmark(
        args.data,
        args.out,
        min_support=args.min_support,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(json.dumps(report["models"], indent=2))


if __name__ == "__main__":
    main()
