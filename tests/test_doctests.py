"""The examples in the docstrings of the core modules run as written (doctest).

Modules whose examples need a language model, a trained shop or a server are left out (their
examples are marked ``+SKIP`` or covered by the tests of their package).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "shoplm.config",
    "shoplm.errors",
    "shoplm.estimator",
    "shoplm.interactions",
    "shoplm.store.database",
    "shoplm.store.events",
    "shoplm.store.items",
    "shoplm.store.users",
    "shoplm.store.orders",
    "shoplm.store.conversations",
    "shoplm.store.api_keys",
    "shoplm.store.hashing",
    "shoplm.app.registry",
    "shoplm.app.keys",
    "shoplm.app.events",
    "shoplm.recommend.components",
    "shoplm.recommend.engine",
    "shoplm.recommend.catalog",
    "shoplm.recommend.rules",
    "shoplm.recommend.profiles",
    "shoplm.recommend.topk",
    "shoplm.recommend.answers",
    "shoplm.ingest.rows",
    "shoplm.ingest.pseudonymize",
    "shoplm.ingest.sequences",
    "shoplm.assistant.replies",
    "shoplm.assistant.state",
    "shoplm.assistant.tools",
    "shoplm.assistant.dialogue",
    "shoplm.serve.ratelimit",
    "shoplm.serve.metrics",
    "shoplm.lm.texts",
    "shoplm.lm.e5_file",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see output)"
