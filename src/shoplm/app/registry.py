"""Model versions on disk: each training run writes a new version; one pointer names the live one.

Layout under ``settings.models_dir``::

    versions/20261123T181502.021734-3f9a/popularity/  ...  one directory per model
    versions/20261123T190211.493112-77c1/...
    CURRENT                                      the name of the live version

A version becomes live only when it is complete (``publish`` replaces ``CURRENT``
atomically), so a server polling ``CURRENT`` always loads a whole set of models and can
swap to it without dropping a request.

Example:
    >>> import tempfile
    >>> registry = ModelRegistry(tempfile.mkdtemp())
    >>> version = registry.new_version()
    >>> registry.current() is None
    True
    >>> registry.publish(version.name); registry.current() == version.name
    True
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from shoplm.errors import ModelFileError

POINTER = "CURRENT"


class ModelRegistry:
    """The versions directory of one shop's models."""

    def __init__(self, root: str | Path, *, keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = keep

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def new_version(self) -> Path:
        """A fresh, empty version directory (not live until :meth:`publish`)."""
        now = time.time()
        # Sortable by creation time (to the microsecond); the suffix keeps two processes apart.
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}-"
        name += secrets.token_hex(2)
        path = self.versions_dir / name
        path.mkdir(parents=True)
        return path

    def publish(self, version: str) -> None:
        """Make ``version`` the live one (atomic), then prune old versions beyond ``keep``."""
        if not (self.versions_dir / version).is_dir():
            raise ModelFileError(f"no model version {version!r} in {self.versions_dir}")
        staging = self.root / f".{POINTER}.{os.getpid()}"
        staging.write_text(version + "\n")
        os.replace(staging, self.root / POINTER)
        self.prune()

    def current(self) -> str | None:
        """The live version's name, or None before the first training."""
        pointer = self.root / POINTER
        if not pointer.is_file():
            return None
        name = pointer.read_text().strip()
        return name or None

    def current_dir(self) -> Path | None:
        name = self.current()
        return self.versions_dir / name if name else None

    def versions(self) -> list[str]:
        """Every complete or in-progress version, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir())

    def prune(self) -> None:
        """Delete the oldest versions beyond ``keep``, never the live one."""
        live = self.current()
        for name in self.versions()[: -self.keep] if self.keep > 0 else []:
            if name != live:
                shutil.rmtree(self.versions_dir / name, ignore_errors=True)
