"""The scheduler, driven by an injected clock: due times, run records, failures, the lease, retention."""

from __future__ import annotations

import re
import threading

import pandas as pd
import pytest

from shoplm.app.scheduler import JOBS, JobContext, Schedule, Scheduler, iso_utc, job_statuses, parse_utc
from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.store import Store

DAY_MS = 86_400_000


class Clock:
    """A clock the test sets by hand."""

    def __init__(self, iso: str) -> None:
        self.ms = parse_utc(iso)

    def set(self, iso: str) -> None:
        self.ms = parse_utc(iso)

    def __call__(self) -> int:
        return self.ms


def only(settings: Settings, **schedules: str) -> Settings:
    """Settings where just the named jobs are enabled, with the given schedules."""
    config = {name: {"enabled": name in schedules, "schedule": schedules.get(name, "daily 03:00")} for name in JOBS}
    return settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update=_schedules(config))})


def _schedules(config: dict[str, dict[str, object]]) -> dict[str, object]:
    from shoplm.config import JobSchedule

    return {name: JobSchedule(**value) for name, value in config.items()}


def events_at(*days: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"e{d}" for d in days],
            "user_id": "u1",
            "item_id": "i1",
            "event_type": "view",
            "ts_ms": [d * DAY_MS for d in days],
            "scene": "",
            "query": "",
            "session_id": "",
            "suspected_bot": False,
        }
    )


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("daily 03:00", "2026-03-01T02:59", "2026-03-01T03:00:00Z"),
        ("daily 03:00", "2026-03-01T03:00", "2026-03-02T03:00:00Z"),
        ("daily 23:45", "2026-12-31T23:50", "2027-01-01T23:45:00Z"),
        ("every 6h", "2026-03-01T06:00", "2026-03-01T12:00:00Z"),
        ("every 6h", "2026-03-01T23:59", "2026-03-02T00:00:00Z"),
        ("every 15m", "2026-03-01T10:07", "2026-03-01T10:15:00Z"),
        ("  every 2d ", "2026-03-01T10:07", "2026-03-02T00:00:00Z"),  # 2026-03-02 is an even day since 1970
    ],
)
def test_next_slot_of_each_schedule_form(spec: str, after: str, expected: str) -> None:
    assert iso_utc(Schedule.parse(spec).next_after(parse_utc(after))) == expected


@pytest.mark.parametrize("spec", ["", "sometimes", "every 0h", "every 6", "daily 24:00", "daily 3:00", "hourly"])
def test_a_schedule_it_cannot_read_is_refused_with_the_forms_it_can(spec: str) -> None:
    with pytest.raises(InputError, match=re.escape("every N<m|h|d>")):
        Schedule.parse(spec)
    with pytest.raises(ValueError, match="schedule"):
        Settings(scheduler={"train": {"schedule": spec}})


def test_a_job_runs_at_its_slot_once_and_then_waits_for_the_next(store: Store, settings: Settings) -> None:
    clock = Clock("2026-03-01T02:00")
    calls: list[int] = []
    scheduler = Scheduler(
        store,
        only(settings, forecast="daily 03:00"),
        jobs={"forecast": lambda ctx: calls.append(ctx.now_ms) or "forecast done"},
        clock=clock,
    )
    assert scheduler.run_due() == []
    clock.set("2026-03-01T02:59")
    assert scheduler.run_due() == []
    clock.set("2026-03-01T03:00")
    [run] = scheduler.run_due()
    assert (run.job, run.outcome, run.message, run.started_ms) == ("forecast", "ok", "forecast done", clock.ms)
    clock.set("2026-03-01T15:00")
    assert scheduler.run_due() == []
    # Down for three days: the missed slots make one run, not three.
    clock.set("2026-03-04T09:00")
    assert [r.job for r in scheduler.run_due()] == ["forecast"]
    assert scheduler.run_due() == []
    assert calls == [parse_utc("2026-03-01T03:00"), parse_utc("2026-03-04T09:00")]
    assert [r["outcome"] for r in store.jobs.recent("forecast")] == ["ok", "ok"]


def test_once_runs_jobs_that_never_ran_at_once_and_a_disabled_job_never(store: Store, settings: Settings) -> None:
    clock = Clock("2026-03-01T10:00")
    ran: list[str] = []
    jobs = {name: (lambda ctx, name=name: ran.append(name) or name) for name in ("retention", "train", "alerts")}
    configured = only(settings, retention="daily 04:00", train="every 6h")  # alerts disabled
    scheduler = Scheduler(store, configured, jobs=jobs, clock=clock)
    assert scheduler.run_due() == []  # the server's loop waits for the first slot
    assert [r.job for r in scheduler.run_due(never_run_due=True)] == ["retention", "train"]
    assert ran == ["retention", "train"]
    clock.set("2026-03-01T12:00")
    assert [r.job for r in scheduler.run_due(never_run_due=True)] == ["train"]
    assert "alerts" not in store.jobs.last_runs()


def test_a_failing_job_is_recorded_failed_and_the_others_still_run(store: Store, settings: Settings) -> None:
    def broken(_ctx: JobContext) -> str:
        raise RuntimeError("the database of the forecast went away")

    def nothing_to_do(_ctx: JobContext) -> str:
        raise InputError("forecast: the store has no orders yet")

    clock = Clock("2026-03-01T04:00")
    jobs = {"retention": nothing_to_do, "train": broken, "forecast": lambda ctx: "ok then"}
    scheduler = Scheduler(
        store, only(settings, retention="every 1h", train="every 1h", forecast="every 1h"), jobs=jobs, clock=clock
    )
    runs = scheduler.run_due(never_run_due=True)
    assert [(r.job, r.outcome) for r in runs] == [("retention", "skipped"), ("train", "failed"), ("forecast", "ok")]
    last = store.jobs.last_runs()
    assert last["train"]["message"] == "RuntimeError: the database of the forecast went away"
    assert last["retention"]["message"] == "forecast: the store has no orders yet"
    assert last["train"]["finished_ms"] == clock.ms
    # The failure does not make it retry at once: it waits for its next slot like any run.
    assert scheduler.run_due() == []
    clock.set("2026-03-01T05:00")
    assert [r.job for r in scheduler.run_due()] == ["retention", "train", "forecast"]


def test_only_the_lease_holder_runs_jobs_and_a_dead_holder_is_replaced(store: Store, settings: Settings) -> None:
    clock = Clock("2026-03-01T04:00")
    configured = only(settings, retention="every 1h")
    ran: list[str] = []
    first = Scheduler(
        store, configured, jobs={"retention": lambda ctx: ran.append("a") or "a"}, clock=clock, holder="a"
    )
    second = Scheduler(
        store, configured, jobs={"retention": lambda ctx: ran.append("b") or "b"}, clock=clock, holder="b"
    )
    assert [r.job for r in first.run_due(never_run_due=True)] == ["retention"]
    assert second.run_due(never_run_due=True) == []  # a holds the lease (120 s)
    assert store.jobs.lease_holder("scheduler", now_ms=clock.ms) == "a"
    # a dies in the middle of a run: its run stays "running" and its lease runs out.
    store.jobs.start("retention", started_ms=clock.ms + 1000)
    clock.set("2026-03-01T05:00")
    runs = second.run_due()
    assert [(r.job, r.outcome) for r in runs] == [("retention", "ok")]
    assert ran == ["a", "b"]
    outcomes = [(r["outcome"], r["message"]) for r in store.jobs.recent("retention")]
    assert outcomes[1] == ("failed", "interrupted: the process running it stopped")
    assert store.jobs.lease_holder("scheduler", now_ms=clock.ms) == "b"
    second.stop()  # gives the lease up: the other may take it at once
    assert store.jobs.lease_holder("scheduler", now_ms=clock.ms) is None
    assert first.run_due() == [] and store.jobs.lease_holder("scheduler", now_ms=clock.ms) == "a"


def test_the_scheduler_applies_retention(store: Store, settings: Settings) -> None:
    store.upsert("events", events_at(1, 20, 39, 40))
    clock = Clock("1970-02-10T04:00")  # day 40
    old_run = store.jobs.start("train", started_ms=0)
    store.jobs.finish(old_run, finished_ms=1, outcome="ok")
    configured = only(settings, retention="daily 04:00")
    configured.scheduler.retention_days = 10
    configured.scheduler.run_history_days = 30
    [run] = Scheduler(store, configured, jobs={"retention": JOBS["retention"]}, clock=clock).run_due(never_run_due=True)
    assert run.outcome == "ok" and "deleted 2 events" in run.message and "deleted 1 old job runs" in run.message
    assert sorted(store.frame("events")["event_id"]) == ["e39", "e40"]
    assert [r["job"] for r in store.jobs.recent()] == ["retention"]


def test_retention_zero_keeps_every_event(store: Store, settings: Settings) -> None:
    store.upsert("events", events_at(1, 2))
    clock = Clock("2026-03-01T04:00")
    [run] = Scheduler(
        store, only(settings, retention="daily 04:00"), jobs={"retention": JOBS["retention"]}, clock=clock
    ).run_due(never_run_due=True)
    assert run.outcome == "ok" and "kept forever" in run.message
    assert store.count("events") == 2


def test_statuses_show_last_run_next_run_and_outcome(store: Store, settings: Settings) -> None:
    clock = Clock("2026-03-01T03:00")
    configured = only(settings, forecast="daily 03:00", alerts="every 5m")
    Scheduler(store, configured, jobs={"forecast": lambda ctx: "7 SKUs"}, clock=clock).run_due(never_run_due=True)
    clock.set("2026-03-01T03:07")
    status = job_statuses(store, configured, now_ms=clock.ms)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert set(jobs) == set(JOBS)
    forecast = jobs["forecast"]
    assert forecast["last_run"]["outcome"] == "ok" and forecast["last_run"]["message"] == "7 SKUs"
    assert forecast["last_run"]["started"] == "2026-03-01T03:00:00Z"
    assert forecast["next_run"] == "2026-03-02T03:00:00Z" and not forecast["due"]
    assert jobs["alerts"]["last_run"] is None and jobs["alerts"]["next_run"] == "2026-03-01T03:10:00Z"
    assert jobs["train"]["enabled"] is False and jobs["train"]["next_run"] is None
    assert [r["job"] for r in status["runs"]] == ["forecast"]


def test_the_loop_runs_in_a_thread_until_stopped(store: Store, settings: Settings) -> None:
    clock = Clock("2026-03-01T02:00")
    configured = only(settings, retention="daily 03:00")
    configured.scheduler.poll_seconds = 0.01
    ran = threading.Event()
    scheduler = Scheduler(store, configured, jobs={"retention": lambda ctx: ran.set() or "ran"}, clock=clock)
    scheduler.start()
    try:
        clock.set("2026-03-01T03:00")
        assert ran.wait(timeout=10)
    finally:
        scheduler.stop()
    assert store.jobs.last_runs()["retention"]["outcome"] == "ok"
    assert store.jobs.lease_holder("scheduler", now_ms=clock.ms) is None
