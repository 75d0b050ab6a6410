"""Admin commands for users' rights and secrets: forget, export-user, rekey, keys rotate, privacy-status.

Each of them appends an entry to the audit log (actor ``cli``), naming the user only by a
salted hash.

Example:
    $ shoplm forget U00042 --yes                      # everything of the user, everywhere
    $ shoplm export-user U00042 --out u00042.json     # everything stored about the user, as JSON
    $ shoplm rekey --yes                              # new pseudonymization key; histories keep joining
    $ shoplm keys rotate 3f9a1c2b7d4e                 # a new secret; the old one stops working
    $ shoplm privacy-status                           # models to retrain, the audit log's tail
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import InputError

__all__ = ["register"]

UserArg = Annotated[str, typer.Argument(help="the shop's user id (or the pseudonym shoplm stores for it)")]
PseudonymousOpt = Annotated[
    bool, typer.Option("--pseudonymous", help="USER is the stored pseudonym, not the shop's id")
]


@handle_errors
def forget(
    user: UserArg,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: the user's data cannot be brought back")] = False,
    pseudonymous: PseudonymousOpt = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="then search every file under the data directory for the user")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a user everywhere: store rows, rejects and source files, caches, rows in saved models (audited)."""
    if not yes:
        raise InputError("forgetting a user cannot be undone: add --yes to confirm")
    from shoplm.app.erasure import forget_user

    settings = load_settings(data_dir)
    store = open_store(settings)
    try:
        report = forget_user(store, settings, user, pseudonymous=pseudonymous, verify=verify)
    finally:
        store.close()
    rows = ", ".join(f"{name} {count:,}" for name, count in sorted(report.rows.items())) or "none"
    console.print(f"[green]✓[/] forgot the user (audit entry {report.audit_entry}); rows deleted: {rows}")
    for path in report.files:
        console.print(f"  rewrote {path} without the user's rows", highlight=False)
    for path in report.models_rewritten:
        console.print(f"  rewrote model {path} without the user's rows", highlight=False)
    for path in report.models_removed:
        console.print(f"  removed model {path}: it could not drop the user's rows", highlight=False)
    if report.cached_vectors:
        console.print(f"  dropped {report.cached_vectors} cached embedding(s) of the user's texts")
    if report.flagged_for_retraining:
        console.print(
            f"  flagged {len(report.flagged_for_retraining)} model version(s) for retraining "
            "(see `shoplm privacy-status`); serving already treats the user as unknown"
        )
    if not report.compacted:
        console.print(
            "  [yellow]the database's write-ahead log stayed busy[/] (a server reading?): the deleted rows' bytes "
            "may stay in its -wal file until SQLite overwrites it or the last connection closes (stop the servers)"
        )
    if report.residue:
        from shoplm.cli.common import errors

        errors.print("[bold red]still found the user in:[/] " + ", ".join(report.residue), highlight=False)
        if all(entry.endswith("(raw id)") for entry in report.residue):
            errors.print("only the raw id matched: a short or numeric id also stands for other values; look first")
        raise typer.Exit(1)
    if verify:
        console.print("  verified: no file under the data directory holds the user's id, pseudonym or texts")


@handle_errors
def export_user(
    user: UserArg,
    out: Annotated[Path | None, typer.Option("--out", help="write the JSON here (default: print it)")] = None,
    pseudonymous: PseudonymousOpt = False,
    data_dir: DataDirOption = None,
) -> None:
    """Everything stored about a user (right of access), as JSON (audited)."""
    from shoplm.app.erasure import export_user as export

    settings = load_settings(data_dir)
    store = open_store(settings)
    try:
        document = export(store, settings, user, pseudonymous=pseudonymous)
    finally:
        store.close()
    text = json.dumps(document, indent=1, ensure_ascii=False, default=str)
    if out is None:
        print(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    count = sum(len(rows) for rows in document["tables"].values())
    console.print(f"[green]✓[/] wrote {count:,} stored rows and {len(document['files'])} file(s)' rows to {out}")


@handle_errors
def rekey(
    yes: Annotated[bool, typer.Option("--yes", help="confirm (restart running servers afterwards)")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Rotate the pseudonymization key: re-hash every stored pseudonym and extend the key chain (audited)."""
    if not yes:
        raise InputError("re-keying rewrites every stored pseudonym: add --yes to confirm (then restart servers)")
    from shoplm.app.rekey import key_file
    from shoplm.app.rekey import rekey as run

    settings = load_settings(data_dir)
    store = open_store(settings)
    try:
        result = run(store, settings)
    finally:
        store.close()
    console.print(
        f"[green]✓[/] re-keyed {result.users:,} users ({sum(result.rows.values()):,} rows); "
        f"{key_file(settings)} now holds a chain of {result.generation} keys. Restart running servers.",
        highlight=False,
    )


@handle_errors
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="the key's id (from `shoplm keys list`)")],
    data_dir: DataDirOption = None,
) -> None:
    """Replace a key by a new one of the same scope and name; the old one stops working (audited)."""
    from shoplm.app.keys import KeyStore

    settings = load_settings(data_dir)
    store = open_store(settings)
    try:
        created = KeyStore(store).rotate(key_id)  # audited by the key store, as create and revoke are
    finally:
        store.close()
    console.print(f"rotated key {key_id} -> {created.key.key_id} (scope {created.key.scope}); store it now:")
    print(created.secret)


@handle_errors
def privacy_status(
    limit: Annotated[int, typer.Option(help="audit entries shown, newest last")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Model versions to retrain after forgetting users, and the newest audit log entries."""
    if limit < 1:
        raise InputError(f"--limit must be 1 or more, got {limit}", field="limit")
    from shoplm.app.erasure import retraining_status

    settings = load_settings(data_dir)
    store = open_store(settings)
    try:
        entries = store.audit.entries(limit=limit)
    finally:
        store.close()
    status = retraining_status(settings)
    if as_json:
        print(json.dumps({**status, "audit": entries}))
        return
    live = status["live_version"] or "none"
    verdict = "[yellow]needs retraining[/]" if status["live_needs_retraining"] else "[green]up to date[/]"
    console.print(f"live model version: {live} ({verdict})")
    for unit, entry in sorted(status["flagged"].items()):
        console.print(f"  flagged {unit}: trained with data of {entry['forgotten_users']} forgotten user(s)")
    from rich.table import Table

    table = Table(title="audit log")
    for column in ("#", "time (UTC)", "actor", "action", "user hash", "details"):
        table.add_column(column)
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["at_ms"] / 1000))
        table.add_row(
            str(entry["entry_id"]),
            when,
            entry["actor"],
            entry["action"],
            entry["subject_hash"][:16],
            json.dumps(entry["details"], sort_keys=True),
        )
    console.print(table)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the commands to the ``shoplm`` app (and ``keys rotate`` to ``shoplm keys``)."""
    from shoplm.cli.serve import keys_app

    app.command("forget")(forget)
    app.command("export-user")(export_user)
    app.command("rekey")(rekey)
    app.command("privacy-status")(privacy_status)
    keys_app.command("rotate")(keys_rotate)
