"""Shared fixtures: isolated settings and stores; an offline model hub; one thread for torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

# Nothing may reach a model hub; one thread keeps the suite from fighting itself on 2 cores.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from shoplm.config import Settings
from shoplm.store import Store


def require_in_ci(reason: str) -> NoReturn:
    """A prerequisite is missing: skip on a user's machine, fail in CI (which installs it)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _torch_single_thread() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's shoplm.toml or SHOPLM_* variables."""
    for name in list(os.environ):
        if name.startswith("SHOPLM_") and name != "SHOPLM_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        pseudonymization_key="test-key",
        ingest={"chunk_rows": 1000},
        recommend={"sequential_minutes": 0.1},
        scheduler={"in_server": False},  # no scheduled job starts inside an unrelated test's app
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store.open(settings.database_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole run: each text is encoded once, whichever test asks first."""
    return tmp_path_factory.mktemp("embeddings")
