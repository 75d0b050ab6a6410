"""The ``shoplm`` commands of operations: the scheduler, backup and restore; :func:`register` adds them.

Example:
    $ shoplm scheduler --once            # run what is due and exit (for cron)
    $ shoplm scheduler                   # run jobs at their times until Ctrl-C
    $ shoplm backup shop-2026-03-01.backup
    $ shoplm restore shop-2026-03-01.backup --yes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import ConflictError, InputError

__all__ = ["register"]


@handle_errors
def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="run the jobs that are due (and those never run), then exit")
    ] = False,
    job: Annotated[
        list[str] | None, typer.Option("--job", help="with --once: run this job now whether due or not (repeatable)")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="print every job's last and next run as JSON, and exit")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run the scheduled jobs (retraining, forecasts, churn, fraud alerts, webhook delivery, retention).

    Without --once it runs in the foreground until Ctrl-C, looking for due jobs every
    ``scheduler.poll_seconds``; it runs nothing while another process (a ``shoplm serve``) holds the
    scheduler's lease, and takes over if that one stops.
    """
    import logging

    from shoplm.app.scheduler import Scheduler, job_statuses

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        if status:
            console.print_json(json.dumps(job_statuses(store, settings)))
            return
        if job and not once:
            raise InputError("--job runs a job now: use it with --once")
        from shoplm.store.migrate import check_schema_current

        # Like `shoplm serve`: no jobs on tables this shoplm does not know (exit 2, naming `shoplm db upgrade`).
        check_schema_current(store.engine)
        runner = Scheduler(store, settings)
        if not once:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            console.print(
                f"scheduler running: {', '.join(runner.enabled()) or 'no jobs enabled'}; "
                f"polling every {settings.scheduler.poll_seconds:g} s (Ctrl-C stops)"
            )
            try:
                runner.run_forever()
            finally:
                runner.stop()  # gives the lease up at once, so a server may take over
            return
        try:
            if job:
                runs = runner.run_jobs(job)
            else:
                runs = runner.run_due(never_run_due=True) if runner.take_lease() else None
        finally:
            runner.stop()
        if runs is None:
            holder = store.jobs.lease_holder("scheduler", now_ms=runner.clock())
            raise ConflictError(f"another process runs the scheduled jobs ({holder}); nothing was run here")
    for run in runs:
        colour = {"ok": "green", "skipped": "yellow"}.get(run.outcome, "red")
        console.print(f"[{colour}]{run.outcome:7}[/] {run.job}: {run.message}", highlight=False)
    if not runs:
        console.print("nothing due")
    if any(run.outcome == "failed" for run in runs):
        raise typer.Exit(1)


@handle_errors
def backup(
    file: Annotated[Path, typer.Argument(help="the backup file to write", dir_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="replace FILE if it exists")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Write a consistent backup of the database (the server may keep running and writing).

    SQLite: the online backup API; PostgreSQL: pg_dump -Fc. Models and caches are not included
    (made again from the database by `shoplm train` and the analytics jobs); nor is the
    pseudonymization key: keep a copy of data_dir/secret.key (or your configured key) apart.
    """
    from shoplm.app.audit import record
    from shoplm.store.backup import backup_store

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        result = backup_store(store, file, overwrite=force)
        record(store, settings, actor="cli", action="backup", details={"file": str(result.path), "bytes": result.bytes})
    console.print(
        f"[green]✓[/] {result.backend} backup written to {result.path} ({result.bytes:,} bytes, {result.seconds:.2f} s)"
    )
    if not settings.pseudonymization_key.get_secret_value():
        console.print(f"keep a copy of {settings.data_dir / 'secret.key'} too: the backup does not hold it")


@handle_errors
def restore(
    file: Annotated[Path, typer.Argument(help="a file written by `shoplm backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: every table of the store is replaced")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Replace the store's database with a backup. Stop `shoplm serve` and `shoplm scheduler` first.

    The file is checked before anything changes (a missing, corrupt or foreign file exits 2).
    Afterwards, `shoplm train` (and the analytics jobs) bring the models in line with the data.
    """
    from shoplm.app.audit import record
    from shoplm.store.backup import restore_store

    settings = load_settings(data_dir)
    if not file.is_file():
        raise InputError(f"{file}: no such backup file")
    if not yes:
        raise InputError(f"restoring replaces every table of {settings.database_url}: add --yes to confirm")
    with open_store(settings) as store:
        result = restore_store(store, file)
        events = store.count("events")
        # Into the restored log, which is the backup's: the entries made after the backup are gone with it.
        record(store, settings, actor="cli", action="restore", details={"file": str(result.path)})
    console.print(f"[green]✓[/] {result.backend} store restored from {result.path}: {events:,} events")
    console.print("retrain to match the restored data: shoplm train (and the analytics jobs)")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``scheduler``, ``backup`` and ``restore`` to ``app`` (no benchmarks)."""
    del bench_app
    app.command("scheduler")(scheduler)
    app.command("backup")(backup)
    app.command("restore")(restore)
