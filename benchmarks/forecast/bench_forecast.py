"""Weekly demand forecasts on an Online Retail file; the same run as ``shoplm bench forecast``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/forecast/bench_forecast.py \\
        --data ../shared/data/retail/online_retail.csv.gz --out benchmarks/forecast/online_retail.json
"""

from __future__ import annotations

import sys

from shoplm.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "forecast", *sys.argv[1:]], prog_name="bench_forecast.py"))
