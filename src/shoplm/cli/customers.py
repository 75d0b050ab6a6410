"""The ``shoplm`` commands of the customers domain; :func:`register` adds them to the app."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this domain's commands to ``app`` and its benchmarks to ``bench_app``."""
