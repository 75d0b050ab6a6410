"""The docstring examples of the customers package run as written (tests/test_doctests.py lists other packages)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "shoplm.customers.summary",
    "shoplm.customers.bgnbd",
    "shoplm.customers.churn_features",
    "shoplm.customers.churn",
    "shoplm.customers.value",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
