"""``shoplm evaluate``: the whole recommendation engine of a shop's store, measured offline.

Reads the store's events and catalog (and the item embeddings ``shoplm encode`` wrote),
fits every registered source the data allows and the ranker under the leave-one-out protocol
of :func:`shoplm.recommend.evaluation.evaluate_hybrid`, and writes the figures as JSON. The
live model version is not touched: evaluation fits its own models, which must not see the
targets they are measured on.

Example:
    >>> report = evaluate_shop(settings, max_users=2000)       # doctest: +SKIP
    >>> report["models"]["ranker"]["NDCG@20"]                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from shoplm.app.jobs import read_training_inputs
from shoplm.config import Settings
from shoplm.errors import InputError, ShoplmError
from shoplm.interactions import Interactions
from shoplm.store import Store

__all__ = ["evaluate_shop"]


def evaluate_shop(
    settings: Settings,
    *,
    out: Path | None = None,
    protocol: str = "exclude_history",
    max_users: int | None = None,
    minutes: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every source, their fusion and the ranker on the store of ``settings``.

    Args:
        settings: the shop's settings (its store, embeddings and disabled sources).
        out: write the report here as JSON (parents created).
        protocol: ``"exclude_history"`` (default, the published protocol) or ``"keep_history"``.
        max_users: evaluate a random sample of this many users (None: every user).
        minutes: the sequential model's training budget (default: ``recommend.sequential_minutes``).
        progress: called with a line of text per step.

    Returns:
        The report of :func:`~shoplm.recommend.evaluation.evaluate_hybrid`, with ``seconds`` and
        ``settings`` (the budget and the sources left out) added.
    """
    from shoplm.recommend.catalog import CatalogView
    from shoplm.recommend.components import fit_sources
    from shoplm.recommend.evaluation import evaluate_hybrid

    if max_users is not None and max_users < 1:
        raise InputError(f"--max-users must be at least 1, not {max_users}")
    started = time.monotonic()
    store = Store.open(settings.database_url)
    try:
        inputs, catalog = read_training_inputs(store, settings)
    finally:
        store.close()
    interactions = inputs.interactions
    if not len(interactions) or catalog.empty:
        raise ShoplmError("nothing to evaluate: ingest items and events first (e.g. `shoplm import amazon-seq DIR`)")
    budget = settings.recommend.sequential_minutes if minutes is None else minutes
    inputs = replace(inputs, minutes=budget)
    disabled = set(settings.recommend.disabled_sources)

    def sources(train: Interactions) -> dict[str, Any]:
        if progress:
            progress(f"fitting sources (the sequential model within {budget:g} minutes)")
        return fit_sources(replace(inputs, interactions=train), include=lambda c: c.name not in disabled)

    report = evaluate_hybrid(
        interactions.sequences(),
        CatalogView.from_frame(catalog),
        sources,
        protocol=protocol,
        max_users=max_users,
        seed=settings.seed,
        progress=progress,
    )
    report["settings"] = {"sequential_minutes": budget, "disabled_sources": sorted(disabled), "seed": settings.seed}
    report["seconds"] = round(time.monotonic() - started, 1)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2))
    return report
