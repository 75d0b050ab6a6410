"""The examples in the risk package's docstrings run as written (tests/test_doctests.py lists other packages)."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["shoplm.risk.features", "shoplm.risk.rules", "shoplm.risk.scorer", "shoplm.risk.bench"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
