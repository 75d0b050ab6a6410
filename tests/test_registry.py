from __future__ import annotations

from pathlib import Path

import pytest

from shoplm.app.registry import ModelRegistry
from shoplm.errors import ModelFileError


def test_versions_publish_atomically_and_old_ones_are_pruned(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, keep=2)
    assert registry.current() is None and registry.current_dir() is None
    names = []
    for _ in range(4):
        version = registry.new_version()
        (version / "model").mkdir()
        registry.publish(version.name)
        names.append(version.name)
        assert registry.current() == version.name
    assert len(set(names)) == 4
    assert registry.versions() == names[-2:]  # the two newest remain
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging files left


def test_an_unpublished_version_is_never_live_nor_pruned_when_live(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, keep=1)
    live = registry.new_version()
    registry.publish(live.name)
    registry.new_version()  # a training run still writing
    assert registry.current() == live.name
    with pytest.raises(ModelFileError, match="no model version"):
        registry.publish("nope")
