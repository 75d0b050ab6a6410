"""A small demo store for the privacy tests: generated once per session, copied per test that spends its budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shoplm.config import Settings

#: The demo's last month: its data ends at 2026-06-30 00:00 UTC.
WINDOW = ("2026-06-01", "2026-06-29")

_TEMPLATE: list[Path] = []


def dp_settings(data_dir: Path, budget: float = 10.0) -> Settings:
    return Settings(data_dir=data_dir, pseudonymization_key="dp-tests", privacy={"epsilon_budget": budget})


def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a small demo store ingested (items, users, events, orders, reviews)."""
    if _TEMPLATE:
        return _TEMPLATE[0]
    from shoplm.demo import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    root = tmp_path_factory.mktemp("dp-shop")
    manifest = generate_demo_store(root / "source", seed=5, sizes=DemoSizes(n_items=60, n_users=120, n_events=4_000))
    settings = dp_settings(root / "data")
    store = Store.open(settings.database_url)
    try:
        for kind in ("items", "users", "events", "orders", "reviews"):
            ingest(kind, manifest.files[kind], store=store, settings=settings)
    finally:
        store.close()
    _TEMPLATE.append(root / "data")
    return _TEMPLATE[0]


def dp_shop_copy(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the small shop's data directory."""
    target = tmp_path / "dp-data"
    shutil.copytree(_template(tmp_path_factory), target)
    return target
