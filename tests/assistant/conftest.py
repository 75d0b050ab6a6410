"""Fixtures of the assistant tests: one embedding cache per session, so each text is encoded once.

The dialogue fixtures (``kit``: both trained models, the encoder and the policy index; ``shop``;
``bot``) are made available here rather than imported into each test module: a session fixture
imported into several modules is set up once per module, and ``kit`` costs most of a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.assistant.dialogue_fixtures import bot, kit, shop  # noqa: F401  (fixtures for every module here)


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-embeddings")
