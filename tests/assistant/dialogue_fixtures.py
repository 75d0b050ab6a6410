"""Fixtures of the dialogue tests: both assistant models and the encoder once per session, a fresh shop per test.

``tests/assistant/conftest.py`` makes the fixtures available to every module there (imported into each
module, the session fixture ``kit`` would be set up once per module). Import ``Kit`` and ``make_bot`` as needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoplm.app.assistant import Assistant
from shoplm.assistant.retrieval import PolicyIndex
from shoplm.assistant.training import (
    default_model_path,
    default_sentiment_path,
    train_default_assistant_model,
    train_default_sentiment_model,
)
from shoplm.config import Settings
from shoplm.lm import TextEncoder, load_encoder
from shoplm.lm.classify.classifier import TextClassifier
from tests.assistant.dialogue_shop import Shop, build_shop, link_cache, make_settings, write_policies


@dataclass
class Kit:
    settings: Settings
    encoder: TextEncoder
    classifier: TextClassifier
    policies: PolicyIndex
    model_path: Path
    cache_dir: Path
    sentiment: TextClassifier
    sentiment_path: Path

    def save_models(self, settings: Settings) -> None:
        """Both models into a shop's models dir, where the CLI and a default Assistant look."""
        self.classifier.save(default_model_path(settings))
        self.sentiment.save(default_sentiment_path(settings))


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
    sentiment = train_default_sentiment_model(settings)
    sentiment_path = default_sentiment_path(settings)
    sentiment.save(sentiment_path)
    sentiment.use(encoder=encoder)
    policies = PolicyIndex.from_directory(write_policies(root / "policies"), encoder)
    return Kit(settings, encoder, classifier, policies, model_path, cache_dir, sentiment, sentiment_path)


@pytest.fixture
def shop(tmp_path: Path, kit: Kit) -> Iterator[Shop]:
    link_cache(tmp_path / "shop", kit.cache_dir)
    made = build_shop(tmp_path / "shop")
    yield made
    made.store.close()


def make_bot(shop: Shop, kit: Kit) -> Assistant:
    return Assistant.load(
        shop.store,
        shop.settings,
        classifier=kit.classifier,
        sentiment=kit.sentiment,
        encoder=kit.encoder,
        policy_index=kit.policies,
    )


@pytest.fixture
def bot(shop: Shop, kit: Kit) -> Assistant:
    return make_bot(shop, kit)
