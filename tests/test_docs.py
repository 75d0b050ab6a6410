"""The README's input-format table says what the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shoplm.ingest.schemas import KINDS

README = Path(__file__).resolve().parents[1] / "README.md"


def _format_rows() -> dict[str, str]:
    text = README.read_text()
    section = text.split("## Input formats", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| (\w+) \| (.+) \|$", section, re.M)}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_readme_lists_every_column_and_marks_required_ones(kind: str) -> None:
    row = _format_rows()[kind]
    spec = KINDS[kind]
    for field in spec.fields:
        assert re.search(rf"\b{field.name}\b", row), f"README omits {kind}.{field.name}"
        required_in_readme = f"**{field.name}**" in row
        assert required_in_readme == field.required, f"README's bold for {kind}.{field.name} is wrong"
        for choice in field.choices:
            assert choice in row, f"README omits {kind}.{field.name} value {choice!r}"


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text()[:600]
    assert "make demo" in head and "make test" in head
