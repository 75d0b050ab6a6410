"""Scheduled jobs' runs (``job_runs``) and the lease that lets one process at a time run them.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> run = store.jobs.start("retention", started_ms=1_000)
    >>> store.jobs.finish(run, finished_ms=1_500, outcome="ok", message="deleted 0 events")
    >>> store.jobs.last_runs()["retention"]["outcome"]
    'ok'
    >>> store.jobs.acquire_lease("scheduler", "host:1", now_ms=0, ttl_ms=60_000)
    True
    >>> store.jobs.acquire_lease("scheduler", "host:2", now_ms=30_000, ttl_ms=60_000)   # held by host:1
    False
    >>> store.jobs.acquire_lease("scheduler", "host:2", now_ms=61_000, ttl_ms=60_000)   # expired: taken over
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from shoplm.errors import InputError
from shoplm.store.schema import job_runs, scheduler_leases

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: What a run can end as; ``running`` while it goes.
OUTCOMES = ("running", "ok", "failed", "skipped")


class JobRunRepository:
    """The ``job_runs`` and ``scheduler_leases`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- runs ------------------------------------------------------------------------------
    def start(self, job: str, *, started_ms: int) -> int:
        """Record that ``job`` started; returns the run's id (for :meth:`finish`)."""
        with self._store.transaction() as conn:
            result = conn.execute(
                insert(job_runs).values(job=job, started_ms=started_ms, outcome="running", message="")
            )
            return int(result.inserted_primary_key[0])

    def finish(self, run_id: int, *, finished_ms: int, outcome: str, message: str = "") -> None:
        """Record how run ``run_id`` ended (``ok``, ``failed`` or ``skipped``) and why, briefly."""
        if outcome not in OUTCOMES[1:]:
            raise InputError(f"outcome must be one of {OUTCOMES[1:]}, not {outcome!r}")
        with self._store.transaction() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.run_id == run_id)
                .values(finished_ms=finished_ms, outcome=outcome, message=message[:2000])
            )

    def abandon_running(self, *, finished_ms: int, message: str) -> int:
        """Mark every run still ``running`` as failed (their process died); returns how many."""
        with self._store.transaction() as conn:
            result = conn.execute(
                update(job_runs)
                .where(job_runs.c.outcome == "running")
                .values(finished_ms=finished_ms, outcome="failed", message=message)
            )
            return int(result.rowcount)

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The newest run of each job that ever ran: job -> run (see :meth:`recent`)."""
        newest = select(job_runs.c.job, func.max(job_runs.c.run_id).label("run_id")).group_by(job_runs.c.job).subquery()
        statement = select(job_runs).join(newest, job_runs.c.run_id == newest.c.run_id)
        with self._store.engine.connect() as conn:
            return {row.job: _run_dict(row) for row in conn.execute(statement)}

    def recent(self, job: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs (of ``job``, if given), newest first: run_id, job, started_ms,
        finished_ms (None while running), outcome and message."""
        statement = select(job_runs).order_by(job_runs.c.run_id.desc()).limit(limit)
        if job is not None:
            statement = statement.where(job_runs.c.job == job)
        with self._store.engine.connect() as conn:
            return [_run_dict(row) for row in conn.execute(statement)]

    def delete_older_than(self, cutoff_ms: int) -> int:
        """Delete finished runs that started before ``cutoff_ms``; returns how many."""
        with self._store.transaction() as conn:
            result = conn.execute(
                delete(job_runs).where(job_runs.c.started_ms < cutoff_ms, job_runs.c.outcome != "running")
            )
            return int(result.rowcount)

    # -- the lease -------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, *, now_ms: int, ttl_ms: int) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``now_ms + ttl_ms``.

        Succeeds when nobody holds it, ``holder`` holds it already, or the holder's time ran out
        (a process that died). One statement decides each case, so two processes asking at once
        cannot both get it.

        Returns:
            Whether ``holder`` holds the lease now.
        """
        expires = now_ms + ttl_ms
        with self._store.transaction() as conn:
            taken = conn.execute(
                update(scheduler_leases)
                .where(
                    scheduler_leases.c.name == name,
                    or_(scheduler_leases.c.holder == holder, scheduler_leases.c.expires_ms < now_ms),
                )
                .values(holder=holder, expires_ms=expires)
            ).rowcount
            if taken:
                return True
            statement = _insert_ignoring_conflict(conn.dialect.name).values(
                name=name, holder=holder, expires_ms=expires
            )
            return bool(conn.execute(statement).rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if ``holder`` holds it (else nothing happens)."""
        with self._store.transaction() as conn:
            conn.execute(
                delete(scheduler_leases).where(
                    and_(scheduler_leases.c.name == name, scheduler_leases.c.holder == holder)
                )
            )

    def lease_holder(self, name: str, *, now_ms: int) -> str | None:
        """Who holds lease ``name`` at ``now_ms``, or None."""
        statement = select(scheduler_leases.c.holder).where(
            scheduler_leases.c.name == name, scheduler_leases.c.expires_ms >= now_ms
        )
        with self._store.engine.connect() as conn:
            return conn.execute(statement).scalar_one_or_none()


def _insert_ignoring_conflict(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(scheduler_leases).on_conflict_do_nothing(index_elements=["name"])


def _run_dict(row: Any) -> dict[str, Any]:
    return {
        "run_id": int(row.run_id),
        "job": row.job,
        "started_ms": int(row.started_ms),
        "finished_ms": None if row.finished_ms is None else int(row.finished_ms),
        "outcome": row.outcome,
        "message": row.message,
    }
