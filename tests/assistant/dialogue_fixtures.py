"""Fixtures of the dialogue tests: one trained intent model and encoder per session, a fresh shop per test.

Import them into a test module: ``from tests.assistant.dialogue_fixtures import bot, kit, shop``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoplm.assistant.classifier import TextClassifier
from shoplm.assistant.dialogue import Assistant
from shoplm.assistant.retrieval import PolicyIndex
from shoplm.assistant.training import default_model_path, train_default_assistant_model
from shoplm.config import Settings
from shoplm.lm import TextEncoder, load_encoder
from tests.assistant.dialogue_shop import Shop, build_shop, link_cache, make_settings, write_policies


@dataclass
class Kit:
    settings: Settings
    encoder: TextEncoder
    classifier: TextClassifier
    policies: PolicyIndex
    model_path: Path
    cache_dir: Path


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    root = tmp_path_factory.mktemp("assistant-kit")
    cache_dir = root / "cache"
    cache_dir.mkdir()
    link_cache(root / "data", cache_dir)
    settings = make_settings(root / "data")
    encoder = load_encoder(settings)
    classifier = train_default_assistant_model(settings)
    model_path = default_model_path(settings)
    classifier.save(model_path)
    classifier.use(encoder=encoder)
    policies = PolicyIndex.from_directory(write_policies(root / "policies"), encoder)
    return Kit(settings, encoder, classifier, policies, model_path, cache_dir)


@pytest.fixture
def shop(tmp_path: Path, kit: Kit) -> Iterator[Shop]:
    link_cache(tmp_path / "shop", kit.cache_dir)
    made = build_shop(tmp_path / "shop")
    yield made
    made.store.close()


def make_bot(shop: Shop, kit: Kit) -> Assistant:
    return Assistant(
        shop.store, shop.settings, classifier=kit.classifier, encoder=kit.encoder, policy_index=kit.policies
    )


@pytest.fixture
def bot(shop: Shop, kit: Kit) -> Assistant:
    return make_bot(shop, kit)
