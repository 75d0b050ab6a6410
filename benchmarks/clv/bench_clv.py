"""Customer lifetime value on a CDNOW-format file; the same run as ``shoplm bench clv``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/clv/bench_clv.py \\
        --data ../shared/data/cdnow/CDNOW_master.txt --out benchmarks/clv/cdnow.json
"""

from __future__ import annotations

import sys

from shoplm.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "clv", *sys.argv[1:]], prog_name="bench_clv.py"))
