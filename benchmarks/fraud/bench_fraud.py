"""Fraud alerts on a demo store's injected fraud: ``shoplm bench fraud`` (this script runs the same command).

Until the command is wired into ``shoplm`` itself, run it through this script; the arguments
are the command's. See README.md beside this file for the protocol and the figures.

    OPENBLAS_NUM_THREADS=1 python benchmarks/fraud/bench_fraud.py --seed 0 --out benchmarks/fraud/seed0.json
"""

from __future__ import annotations

import sys

import typer

from shoplm.cli import risk as risk_commands


def main() -> None:
    app, bench_app = typer.Typer(add_completion=False), typer.Typer()
    app.add_typer(bench_app, name="bench")

    @app.callback()
    def shoplm() -> None:
        """shoplm's risk commands."""

    risk_commands.register(app, bench_app)
    app(["bench", "fraud", *sys.argv[1:]], prog_name="shoplm")


if __name__ == "__main__":
    main()
