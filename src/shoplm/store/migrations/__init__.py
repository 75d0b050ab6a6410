"""The store's schema migrations (Alembic), shipped inside the package: no ``alembic.ini`` needed.

``versions/`` holds one revision per schema change, each written as explicit operations (never
importing the live :mod:`shoplm.store.schema`, which moves on). This module only locates them
and stamps a database created at the newest one; :mod:`shoplm.store.migrate` runs them.
Alembic is imported inside the functions: opening an existing store needs none of it.

Example:
    >>> head_revision() > BASELINE_REVISION   # revisions are numbered 0001, 0002, ...
    True
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent
#: The revision a database made before migrations existed is taken to be at (the schema of 486498a).
BASELINE_REVISION = "0001"


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """Alembic's configuration for these migrations, built in code.

    Args:
        connection: the connection ``env.py`` migrates (inside the caller's transaction).
        url: a database URL instead, for offline SQL or Alembic's own command line.

    Returns:
        A :class:`alembic.config.Config` whose ``script_location`` is this package.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """The revisions in ``versions/`` (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision: the schema of :mod:`shoplm.store.schema` today."""
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError(f"no migrations in {SCRIPT_LOCATION / 'versions'}")
    return head


def stamp_head(connection: Connection) -> None:
    """Record in ``alembic_version`` that the database on ``connection`` is at the newest revision.

    For a database just made with ``metadata.create_all``: it has today's schema, so no
    migration is to run on it.
    """
    from alembic.migration import MigrationContext

    context: Any = MigrationContext.configure(connection)
    context.stamp(script_directory(), "head")
