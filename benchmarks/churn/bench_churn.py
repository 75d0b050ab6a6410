"""Behavioural churn on an Online Retail file; the same run as ``shoplm bench churn``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/churn/bench_churn.py \\
        --data ../shared/data/retail/online_retail.csv.gz --out benchmarks/churn/online_retail.json
"""

from __future__ import annotations

import sys

from shoplm.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "churn", *sys.argv[1:]], prog_name="bench_churn.py"))
