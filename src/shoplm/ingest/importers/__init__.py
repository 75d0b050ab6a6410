"""Importers for public data formats, found through the ``shoplm.importers`` entry point group.

An importer turns files of some public format into shoplm's standard kinds and feeds them
through the ordinary :func:`~shoplm.ingest.pipeline.ingest`, so validation, rejects,
pseudonymization and idempotency work the same. Another package adds one by declaring::

    [project.entry-points."shoplm.importers"]
    my-format = "my_package.module:MyImporter"

Example:
    >>> sorted(available_importers())[:2]
    ['amazon-seq', 'uci-retail']
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pipeline import IngestReport, ProgressCallback
from shoplm.store import Store

GROUP = "shoplm.importers"


class Importer(Protocol):
    """What an importer provides: a one-line help text and ``run``."""

    help: str

    def run(
        self, path: Path, *, store: Store, settings: Settings, progress: ProgressCallback | None = None
    ) -> list[IngestReport]: ...


def available_importers() -> dict[str, str]:
    """Importer name -> entry point value, for every installed importer."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_importer(name: str) -> Importer:
    """An instance of the importer registered as ``name``."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        raise InputError(f"no importer named {name!r}; installed: {', '.join(sorted(found)) or 'none'}")
    return found[name].load()()
