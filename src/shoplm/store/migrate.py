"""Schema versions of a store: where a database is, migrating it to today's schema, the start-up check.

A new (empty) database is created at the newest revision by :meth:`Store.open
<shoplm.store.database.Store.open>`; a database with tables moves only by :func:`upgrade`
(``shoplm db upgrade``), which runs the Alembic revisions of :mod:`shoplm.store.migrations`
in one transaction. A database made before migrations existed has tables but no
``alembic_version``: :func:`upgrade` records it at the baseline (the schema of 486498a) first.
``shoplm serve`` refuses a database that is not at the newest revision
(:func:`check_schema_current`), naming the command that fixes it.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")                # a new database: created at the newest revision
    >>> schema_status(store.engine).state
    'current'
    >>> check_schema_current(store.engine)             # passes silently
    >>> schema_differences(store.engine)               # today's tables, columns and indexes, exactly
    []
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from shoplm.errors import InputError, ShoplmError
from shoplm.store.database import SCHEMA_LOCK_KEY, Store
from shoplm.store.migrations import BASELINE_REVISION, alembic_config, head_revision, script_directory
from shoplm.store.schema import metadata

__all__ = [
    "SchemaOutOfDateError",
    "SchemaStatus",
    "check_schema_current",
    "current_revision",
    "head_revision",
    "schema_differences",
    "schema_status",
    "upgrade",
]

UPGRADE_COMMAND = "shoplm db upgrade"
VERSION_TABLE = "alembic_version"

SchemaState = Literal["current", "empty", "unmigrated", "behind", "unknown"]


class SchemaOutOfDateError(InputError):
    """The database's schema is not the one this shoplm needs; the message names the command that fixes it.

    An :class:`~shoplm.errors.InputError`: the command line exits 2 on it.
    """


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema is against this shoplm's migrations.

    Attributes:
        current: the revision recorded in the database (``None``: none recorded).
        head: the newest revision this shoplm ships.
        has_tables: whether the database holds any of shoplm's tables.
        state: ``current`` (at head), ``empty`` (nothing yet), ``unmigrated`` (tables made before
            migrations, no revision), ``behind`` (an older revision), ``unknown`` (a revision this
            shoplm does not ship: a newer shoplm migrated it).
    """

    current: str | None
    head: str
    has_tables: bool

    @property
    def state(self) -> SchemaState:
        if self.current == self.head:
            return "current"
        if self.current is None:
            return "unmigrated" if self.has_tables else "empty"
        if self.current in _known_revisions():
            return "behind"
        return "unknown"


def _known_revisions() -> set[str]:
    return {script.revision for script in script_directory().walk_revisions()}


def _recorded_revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise SchemaOutOfDateError(f"the database records several schema revisions {sorted(heads)}: restore a backup")
    return heads[0] if heads else None


def _status(connection: Connection) -> SchemaStatus:
    tables = set(inspect(connection).get_table_names()) & set(metadata.tables)  # not other applications'
    return SchemaStatus(current=_recorded_revision(connection), head=head_revision(), has_tables=bool(tables))


def schema_status(database: Engine | str) -> SchemaStatus:
    """Where a database (an engine, or a URL) is (see :class:`SchemaStatus`)."""
    if isinstance(database, str):
        with Store.open(database, create=False) as store:
            return schema_status(store.engine)
    with database.connect() as connection:
        return _status(connection)


def current_revision(url: str) -> str | None:
    """The schema revision recorded in the database at ``url`` (``None``: none).

    Example:
        >>> current_revision("sqlite://")              # a new in-memory database records none
    """
    return schema_status(url).current


def check_schema_current(database: Engine | str) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at this shoplm's newest revision.

    The message says what the database is at and names ``shoplm db upgrade``: what ``shoplm serve``
    prints, exiting 2, instead of serving from tables it does not know.
    """
    status = schema_status(database)
    url = database if isinstance(database, str) else database.url.render_as_string(hide_password=True)
    where = f"the database {make_url(url).render_as_string(hide_password=True)}"
    if status.state == "current":
        return
    if status.state == "empty":
        raise SchemaOutOfDateError(f"{where} has no tables: run `{UPGRADE_COMMAND}` to create them")
    if status.state == "unmigrated":
        raise SchemaOutOfDateError(
            f"{where} has shoplm's tables but no schema revision (it was made before migrations): "
            f"back it up, then run `{UPGRADE_COMMAND}` to migrate it to revision {status.head}"
        )
    if status.state == "behind":
        raise SchemaOutOfDateError(
            f"{where} is at schema revision {status.current}, this shoplm needs {status.head}: "
            f"back it up, then run `{UPGRADE_COMMAND}`"
        )
    raise SchemaOutOfDateError(
        f"{where} is at schema revision {status.current}, which this shoplm (newest {status.head}) does not know: "
        "a newer shoplm migrated it; run that version, or restore a backup taken before"
    )


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database at ``url`` to ``revision`` (the newest by default), in one transaction.

    A database made before migrations (tables, no revision) is first recorded at the baseline
    (0001, the schema of 486498a); an empty one is built by the revisions from the start. On
    PostgreSQL the whole upgrade commits or rolls back as one, under an advisory lock, so two
    upgrades never interleave; on SQLite the store's writer lock keeps other writers out.

    Args:
        url: the database, ``sqlite:///PATH`` or ``postgresql://...``.
        revision: the target revision.

    Returns:
        The revision before (``None``: none recorded) and the one after.

    Raises:
        SchemaOutOfDateError: the database is at a revision this shoplm does not ship.
        InputError: ``revision`` names no revision.
        ShoplmError: a statement of a revision failed (on PostgreSQL, nothing was changed).

    Example:
        >>> upgrade("sqlite://")                      # an empty database, built from the revisions
        (None, '...')
    """
    from alembic import command
    from alembic.util import CommandError

    with Store.open(url, create=False) as store, store.transaction() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        status = _status(connection)
        if status.state == "unknown":
            check_schema_current(store.engine)  # raises, naming the revision and what to do
        config = alembic_config(connection)
        try:
            if status.state == "unmigrated":
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, revision)
        except CommandError as exc:  # an unknown revision, say: one line, not Alembic's traceback
            raise InputError(f"cannot migrate to revision {revision!r}: {exc}") from None
        except DBAPIError as exc:  # e.g. a table the revision creates exists already
            undone = "nothing was changed" if connection.dialect.name == "postgresql" else "restore the backup"
            raise ShoplmError(
                f"the migration from revision {status.current or '(none)'} failed ({undone}): "
                f"{str(exc.orig).strip().splitlines()[0]}"
            ) from None
        return status.current, _recorded_revision(connection) or ""


def schema_differences(engine: Engine) -> list[Any]:
    """What differs between the database's tables and today's :mod:`shoplm.store.schema` (Alembic's diff).

    Empty when the migrations build exactly today's schema; each entry is one of Alembic's
    ``compare_metadata`` tuples, e.g. ``('add_table', Table('audit_log', ...))`` for a table the
    schema has and no migration creates.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [diff for diff in compare_metadata(context, metadata) if not _is_version_table(diff)]


def _is_version_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == VERSION_TABLE
