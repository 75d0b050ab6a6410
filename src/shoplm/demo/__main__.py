"""``python -m shoplm.demo OUT_DIR [--seed N] [--small]``: write a demo store without the CLI."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shoplm.demo.generator import DemoSizes, generate_demo_store


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate the store and print what was written.

    Example:
        >>> main(["/tmp/demo", "--small"])  # doctest: +SKIP
    """
    ap = argparse.ArgumentParser(prog="python -m shoplm.demo", description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="200 items, 300 users, 5,000 events")
    args = ap.parse_args(argv)
    sizes = DemoSizes(n_items=200, n_users=300, n_events=5_000) if args.small else DemoSizes()
    t0 = time.perf_counter()
    m = generate_demo_store(args.out_dir, seed=args.seed, sizes=sizes)
    print(f"wrote {m.out_dir} in {time.perf_counter() - t0:.1f}s: {m.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
