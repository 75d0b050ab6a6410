"""The docstring examples of the forecast package run as written (pipeline's runs in test_forecast.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "shoplm.forecast.panel",
    "shoplm.lm.categories",
    "shoplm.forecast.ensemble",
    "shoplm.forecast.coldstart",
    "shoplm.forecast.models",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see output)"
