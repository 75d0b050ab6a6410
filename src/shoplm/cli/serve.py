"""``shoplm serve`` and ``shoplm keys create|list|revoke``.

Example:
    $ shoplm keys create --scope write --name storefront     # prints the key once
    $ shoplm serve --port 8000                                # loopback unless --host says otherwise
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import InputError

keys_app = typer.Typer(help="API keys of the HTTP service (stored as salted hashes only).", no_args_is_help=True)


def _settings(data_dir: Path | None, **server: Any) -> Any:
    settings = load_settings(data_dir)
    overrides = {k: v for k, v in server.items() if v is not None}
    if overrides:
        from shoplm.config import ServerSettings

        settings.server = ServerSettings(**{**settings.server.model_dump(), **overrides})
    return settings


def _key_store(data_dir: Path | None) -> Any:
    from shoplm.app.keys import KeyStore

    return KeyStore(open_store(_settings(data_dir)))


@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: server.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: server.port, 8000)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes (default: server.workers, else one per core)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    data_dir: DataDirOption = None,
) -> None:
    """Serve the HTTP API and the dashboard (/dashboard); models reload by themselves after `shoplm train`.

    Each worker process loads the models (their arrays are memory-mapped, so the workers share
    them); a worker that dies is replaced, and the workers stop when this process does.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be 1 or more, got {workers}", field="workers")
    settings = _settings(data_dir, host=host, port=port)
    count = workers or settings.server.workers or max(1, os.cpu_count() or 1)
    from shoplm.store.migrate import check_schema_current

    # A new database is created at the newest schema; one with tables must be at it already
    # (else exit 2, naming `shoplm db upgrade`): no server on tables it does not know.
    open_store(settings).close()
    check_schema_current(settings.database_url)
    from shoplm.serve.workers import run_workers

    console.print(
        f"shoplm serving {settings.database_url} on http://{settings.server.host}:{settings.server.port} "
        f"with {count} worker{'s' if count > 1 else ''} (dashboard: /dashboard, API docs: /docs)",
        highlight=False,
    )
    run_workers(settings, workers=count, log_level=log_level)


@keys_app.command("create")
@handle_errors
def keys_create(
    scope: Annotated[str, typer.Option(help="read, write or admin (each allows the ones before)")] = "read",
    name: Annotated[str, typer.Option(help="a label: who uses the key")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Create a key and print it once: only a salted hash is stored, it cannot be shown again."""
    created = _key_store(data_dir).create(scope, name=name)
    console.print(f"created key {created.key.key_id} (scope {scope}); store it now, it is not shown again:")
    print(created.secret)


@keys_app.command("list")
@handle_errors
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Every key: id, scope, name, created, revoked (never the secret)."""
    import time

    from rich.table import Table

    keys = _key_store(data_dir).list()
    if as_json:
        print(json.dumps([k.__dict__ for k in keys]))
        return

    def when(ms: int | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else ""

    table = Table(title="API keys")
    for column in ("id", "scope", "name", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.key_id, key.scope, key.name, when(key.created_ms), when(key.revoked_ms))
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (from `shoplm keys list`)")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a key; a running service refuses it within seconds."""
    if not _key_store(data_dir).revoke(key_id):
        raise InputError(f"no active key with id {key_id!r}")
    console.print(f"revoked key {key_id}")
