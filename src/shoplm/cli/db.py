"""``shoplm db upgrade`` and ``shoplm db current``: the store's schema revisions.

Example:
    $ shoplm db current              # the revision the database is at, and the newest
    $ shoplm db upgrade              # migrate it (back it up first; stop the server)
"""

from __future__ import annotations

from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings

__all__ = ["register"]

db_app = typer.Typer(help="The store's schema: migrate it, show its revision.", no_args_is_help=True)

_DESCRIBE = {
    "current": "at the newest revision",
    "empty": "empty: `shoplm db upgrade` creates the tables",
    "unmigrated": "made before migrations (no revision): run `shoplm db upgrade`",
    "behind": "behind: run `shoplm db upgrade`",
    "unknown": "at a revision this shoplm does not know: a newer shoplm migrated it",
}


@db_app.command("upgrade")
@handle_errors
def upgrade(
    revision: Annotated[str, typer.Option(help="the revision to migrate to")] = "head",
    data_dir: DataDirOption = None,
) -> None:
    """Migrate the store to the newest schema, in one transaction (on PostgreSQL all or nothing).

    Back the database up first (`shoplm backup`) and stop `shoplm serve`: a server refuses to
    start on a database it does not match, and old servers do not know new tables.
    """
    from shoplm.store import migrate

    settings = load_settings(data_dir)
    before, after = migrate.upgrade(settings.database_url, revision)
    if before == after:
        console.print(f"the store is at revision {after}; nothing to do", highlight=False)
    else:
        console.print(f"migrated the store from revision {before or '(none)'} to {after}", highlight=False)


@db_app.command("current")
@handle_errors
def current(
    check: Annotated[
        bool, typer.Option("--check", help="exit 2 unless the store is at the newest revision (for deploy scripts)")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show the schema revision the store is at and the newest this shoplm ships."""
    from shoplm.store import migrate

    settings = load_settings(data_dir)
    status = migrate.schema_status(settings.database_url)
    console.print(
        f"revision {status.current or '(none)'}, newest {status.head}: {_DESCRIBE[status.state]}", highlight=False
    )
    if check:
        migrate.check_schema_current(settings.database_url)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``shoplm db upgrade|current`` to ``app`` (no benchmark)."""
    del bench_app
    app.add_typer(db_app, name="db")
