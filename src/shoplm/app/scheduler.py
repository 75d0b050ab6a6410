"""The scheduler: retraining, forecasts, churn, fraud and opinion alerts, webhook delivery and retention, at set times.

Each job has a schedule in UTC (``Settings.scheduler``): ``every 6h`` runs at the multiples of six
hours since midnight UTC, ``daily 03:00`` once a day at 03:00. A job is due when the first slot
after its last run's start has come; one that missed several slots (nothing ran meanwhile) runs
once. A job that never ran waits for its first slot after the scheduler started, except under
``shoplm scheduler --once``, which runs it at once (what cron wants on its first call).

Every run is a row of ``job_runs``: ``ok``, ``failed`` (the exception's message; the scheduler goes
on with the next job) or ``skipped`` (nothing to do yet, e.g. no orders to forecast). Only the
process holding the store's ``scheduler`` lease runs jobs, so several server workers, or a server
and ``shoplm scheduler``, never run one job twice at a time; a process that dies loses the lease
after ``lease_seconds`` and another takes over, marking the dead one's unfinished runs failed.

Tests drive it with an injected clock and jobs, no sleeping:

Example:
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir="/tmp/shoplm-doc", scheduler={"retention": {"schedule": "daily 04:00"}})
    >>> store = Store.open("sqlite://")
    >>> now = [parse_utc("2026-01-01T03:59")]
    >>> scheduler = Scheduler(store, settings, jobs={"retention": lambda ctx: "done"}, clock=lambda: now[0])
    >>> scheduler.run_due()
    []
    >>> now[0] = parse_utc("2026-01-01T04:00")
    >>> [(run.job, run.outcome, run.message) for run in scheduler.run_due()]
    [('retention', 'ok', 'done')]
    >>> scheduler.run_due()          # the next slot is tomorrow 04:00
    []
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.store import Store

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
DAY_MS = 86_400_000
LEASE = "scheduler"
_UNITS = {"m": MINUTE_MS, "h": 60 * MINUTE_MS, "d": DAY_MS}
_EVERY = re.compile(r"^\s*every\s+([1-9][0-9]*)\s*([mhd])\s*$")
_DAILY = re.compile(r"^\s*daily\s+([01][0-9]|2[0-3]):([0-5][0-9])\s*$")


def parse_utc(text: str) -> int:
    """An ISO time in UTC (``2026-01-01T04:00``) as epoch milliseconds (for tests and examples)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def iso_utc(ms: int | None) -> str | None:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ``; None stays None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Schedule:
    """When a job runs: every ``period_ms`` from ``offset_ms`` past the Unix epoch (midnight UTC).

    Example:
        >>> s = Schedule.parse("daily 03:00")
        >>> iso_utc(s.next_after(parse_utc("2026-01-01T03:00")))
        '2026-01-02T03:00:00Z'
        >>> iso_utc(Schedule.parse("every 6h").next_after(parse_utc("2026-01-01T07:10")))
        '2026-01-01T12:00:00Z'
    """

    spec: str
    period_ms: int
    offset_ms: int = 0

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        """``every N<m|h|d>`` or ``daily HH:MM`` (UTC); InputError for anything else."""
        if found := _EVERY.match(spec):
            return cls(spec.strip(), int(found.group(1)) * _UNITS[found.group(2)])
        if found := _DAILY.match(spec):
            return cls(spec.strip(), DAY_MS, (int(found.group(1)) * 60 + int(found.group(2))) * MINUTE_MS)
        raise InputError(f"schedule {spec!r}: write 'every N<m|h|d>' (e.g. 'every 6h') or 'daily HH:MM' (UTC)")

    def next_after(self, ms: int) -> int:
        """The first slot strictly after ``ms`` (epoch ms)."""
        return ((ms - self.offset_ms) // self.period_ms + 1) * self.period_ms + self.offset_ms


@dataclass(frozen=True)
class JobContext:
    """What a job function gets: the store, the settings and the scheduler's time (epoch ms)."""

    store: Store
    settings: Settings
    now_ms: int


#: A job: does its work and returns a one-line summary; raises InputError when there is nothing to do.
JobFunction = Callable[[JobContext], str]


@dataclass(frozen=True)
class JobRun:
    """One recorded run."""

    job: str
    started_ms: int
    finished_ms: int
    outcome: str
    message: str


def _train(ctx: JobContext) -> str:
    from shoplm.app.jobs import train_recommenders

    results = train_recommenders(ctx.store, ctx.settings)
    if not results:
        raise InputError("no events to learn from yet")
    return f"trained {', '.join(results)}"


def _forecast(ctx: JobContext) -> str:
    from shoplm.app.analytics import run_forecast

    report = run_forecast(ctx.store, ctx.settings, ray_address=ctx.settings.ray.address or None)
    return f"forecast {len(report['series'])} SKUs, {len(report['reorder'])} to reorder, {report['seconds']} s"


def _churn(ctx: JobContext) -> str:
    from shoplm.app.analytics import run_churn

    report = run_churn(ctx.store, ctx.settings, ray_address=ctx.settings.ray.address or None)
    return f"scored {report['scored']} customers, {report['warned']} warned, {report['seconds']} s"


def _fraud(ctx: JobContext) -> str:
    from shoplm.app.analytics import run_fraud

    found = run_fraud(ctx.store, ctx.settings)
    return (
        f"scored {found['orders']} orders, {found['flagged']} flagged, {found['new_alerts']} new alerts, "
        f"{found['delivered']} delivered, {found['delivery_failed']} not delivered"
    )


def _alerts(ctx: JobContext) -> str:
    from shoplm.app.alerts import AlertCenter

    if not ctx.settings.alerts.webhook_url:
        raise InputError("no webhook configured (alerts.webhook_url)")
    report = AlertCenter(ctx.store, ctx.settings.alerts).deliver_pending()
    if report.failed:  # recorded as failed; each alert is retried next time until its attempts run out
        raise RuntimeError(f"{len(report.failed)} alerts not delivered: {next(iter(report.failed.values()))}")
    return f"delivered {len(report.delivered)} pending alerts"


def _opinion(ctx: JobContext) -> str:
    from shoplm.app.opinion import run_scheduled

    found = run_scheduled(ctx.store, ctx.settings)
    return (
        f"{found['reviews']} reviews, {found['alerts']} complaint spikes, {found['new_alerts']} new alerts, "
        f"{found['delivered']} delivered, {found['delivery_failed']} not delivered"
    )


def _retention(ctx: JobContext) -> str:
    from shoplm.app.retention import apply_retention

    return apply_retention(ctx.store, ctx.settings.scheduler, now_ms=ctx.now_ms).summary()


#: The jobs, in the order they run when several are due at once.
JOBS: dict[str, JobFunction] = {
    "retention": _retention,
    "train": _train,
    "forecast": _forecast,
    "churn": _churn,
    "fraud": _fraud,
    "opinion": _opinion,
    "alerts": _alerts,
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class Scheduler:
    """Runs the due jobs of ``Settings.scheduler`` and records each run in the store.

    Args:
        store: the shop's store (runs and the lease are kept there).
        settings: the shop's settings.
        jobs: name -> job function (default :data:`JOBS`); only those enabled in the settings run.
        clock: the time in epoch ms (tests pass a fake one).
        holder: this process's name on the lease (default ``host:pid:random``).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        jobs: Mapping[str, JobFunction] | None = None,
        clock: Callable[[], int] = _now_ms,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.jobs = dict(JOBS if jobs is None else jobs)
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.started_ms = clock()
        self.schedules = {name: Schedule.parse(_job_settings(settings, name).schedule) for name in self.jobs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False
        self._held_until_ms = -1

    # -- deciding ---------------------------------------------------------------------------
    def enabled(self) -> list[str]:
        """The names of the jobs that run, in running order."""
        return [name for name in self.jobs if _job_settings(self.settings, name).enabled]

    def due(self, *, now_ms: int, never_run_due: bool = False) -> list[str]:
        """The enabled jobs whose next slot has come at ``now_ms``.

        Args:
            now_ms: the time to decide at.
            never_run_due: count a job that never ran as due (``--once``) instead of waiting for
                its first slot after the scheduler started.
        """
        last = self.store.jobs.last_runs()
        found = []
        for name in self.enabled():
            run = last.get(name)
            if run is None and never_run_due:
                found.append(name)
                continue
            base = run["started_ms"] if run is not None else self.started_ms
            if self.schedules[name].next_after(base) <= now_ms:
                found.append(name)
        return found

    # -- running ----------------------------------------------------------------------------
    def run_due(self, *, never_run_due: bool = False) -> list[JobRun]:
        """Run every due job, one after another, if this process holds (or gets) the lease.

        Returns:
            The runs made (empty when nothing was due or another process holds the lease).
        """
        if not self.take_lease():
            return []
        runs: list[JobRun] = []
        due = self.due(now_ms=self.clock(), never_run_due=never_run_due)
        if not due:
            return runs
        with self._keeping_lease():
            for name in due:
                if self._stop.is_set():
                    break
                runs.append(self.run_job(name))
        return runs

    def run_jobs(self, names: list[str]) -> list[JobRun] | None:
        """Run the named jobs now, due or not; None (nothing run) while another process holds the lease."""
        unknown = [name for name in names if name not in self.jobs]
        if unknown:
            raise InputError(f"unknown job(s) {', '.join(unknown)}; jobs: {', '.join(self.jobs)}")
        if not self.take_lease():
            return None
        with self._keeping_lease():
            return [self.run_job(name) for name in names]

    def run_job(self, name: str) -> JobRun:
        """Run job ``name`` now and record it; a failure is recorded, never raised."""
        if name not in self.jobs:
            raise InputError(f"unknown job {name!r}; jobs: {', '.join(self.jobs)}")
        started = self.clock()
        run_id = self.store.jobs.start(name, started_ms=started)
        log.info("job %s started", name)
        try:
            message = self.jobs[name](JobContext(self.store, self.settings, started))
            outcome = "ok"
        except InputError as exc:  # nothing to do yet: not a failure of the job
            outcome, message = "skipped", str(exc)
        except Exception as exc:  # recorded with its message; the scheduler goes on
            log.exception("job %s failed", name)
            outcome, message = "failed", f"{type(exc).__name__}: {exc}"
        finished = self.clock()
        self.store.jobs.finish(run_id, finished_ms=finished, outcome=outcome, message=message)
        log.info("job %s %s: %s", name, outcome, message)
        return JobRun(name, started, finished, outcome, message)

    def take_lease(self) -> bool:
        """Take or renew the store's scheduler lease; False while another process holds it."""
        ttl = int(self.settings.scheduler.lease_seconds * 1000)
        now = self.clock()
        held = self.store.jobs.acquire_lease(LEASE, self.holder, now_ms=now, ttl_ms=ttl)
        if held and now > self._held_until_ms:  # newly taken: runs left "running" were a dead holder's
            abandoned = self.store.jobs.abandon_running(
                finished_ms=now, message="interrupted: the process running it stopped"
            )
            if abandoned:
                log.warning("%d interrupted job runs marked failed", abandoned)
        self._held = held
        self._held_until_ms = now + ttl if held else -1
        return held

    @contextmanager
    def _keeping_lease(self) -> Iterator[None]:
        """Renew the lease in the background while jobs run (a training may outlast it)."""
        done = threading.Event()
        interval = self.settings.scheduler.lease_seconds / 3

        def renew() -> None:
            while not done.wait(interval):
                try:
                    self.take_lease()
                except Exception as exc:  # the next renewal tries again
                    log.warning("could not renew the scheduler lease: %s", exc)

        thread = threading.Thread(target=renew, name="shoplm-scheduler-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    # -- the loop ---------------------------------------------------------------------------
    def run_forever(self) -> None:
        """Look for due jobs now and then every ``poll_seconds`` until :meth:`stop`; a tick that fails is logged.

        The first look is at once: a job whose slot passed while nothing ran (the server was
        down) runs as soon as the scheduler starts, and the lease is taken straight away.
        """
        while True:
            try:
                self.run_due()
            except Exception:  # e.g. the database is away for a moment: try again next tick
                log.exception("scheduler tick failed")
            if self._stop.wait(self.settings.scheduler.poll_seconds):
                break
        self._release()

    def start(self) -> None:
        """Run :meth:`run_forever` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="shoplm-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (a running job finishes first, up to ``timeout``) and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        else:
            self._release()

    def _release(self) -> None:
        if self._held:
            try:
                self.store.jobs.release_lease(LEASE, self.holder)
            except Exception as exc:  # it expires by itself
                log.warning("could not release the scheduler lease: %s", exc)
            self._held = False


def _job_settings(settings: Settings, name: str) -> Any:
    """The ``JobSchedule`` of job ``name`` (a job without its own settings runs daily at 03:00)."""
    from shoplm.config import JobSchedule

    return getattr(settings.scheduler, name, None) or JobSchedule()


def job_statuses(store: Store, settings: Settings, *, now_ms: int | None = None, runs: int = 40) -> dict[str, Any]:
    """Every job with its schedule, last run, next run and outcome, plus the newest runs.

    Args:
        store: the shop's store.
        settings: the shop's settings.
        now_ms: the time to compute next runs from (default: now).
        runs: how many of the newest runs to list.

    Returns:
        ``{"now", "scheduler", "jobs": [...], "runs": [...]}``: ``scheduler`` names the process
        holding the lease (None: no scheduler running); each job has ``name, enabled, schedule,
        last_run, next_run, due``; times are ISO UTC strings.
    """
    now = _now_ms() if now_ms is None else now_ms
    last = store.jobs.last_runs()
    jobs = []
    for name in JOBS:
        config = _job_settings(settings, name)
        run = last.get(name)
        next_ms = Schedule.parse(config.schedule).next_after(run["started_ms"] if run else now)
        jobs.append(
            {
                "name": name,
                "enabled": config.enabled,
                "schedule": config.schedule,
                "last_run": _run_view(run) if run else None,
                "next_run": iso_utc(max(next_ms, now)) if config.enabled else None,
                "due": config.enabled and next_ms <= now,
            }
        )
    return {
        "now": iso_utc(now),
        "scheduler": store.jobs.lease_holder(LEASE, now_ms=now),
        "retention_days": settings.scheduler.retention_days,
        "jobs": jobs,
        "runs": [_run_view(r) for r in store.jobs.recent(limit=runs)],
    }


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    finished = run["finished_ms"]
    return {
        "job": run["job"],
        "started": iso_utc(run["started_ms"]),
        "finished": iso_utc(finished),
        "seconds": None if finished is None else round((finished - run["started_ms"]) / 1000, 3),
        "outcome": run["outcome"],
        "message": run["message"],
    }
