"""Retention: drop behaviour events older than ``scheduler.retention_days``, and old job runs.

What retention removes:

* **events** (views, clicks, carts, purchases, searches, ratings) whose ``ts_ms`` is older than
  ``retention_days`` days; ``0`` keeps them forever (the default). Models already trained keep
  what they learned until the next retraining, which reads only the events left.
* **job runs** (``job_runs``) older than ``run_history_days`` (default 90), finished ones only.

What it keeps: orders and their lines (a shop's accounting records, which the law usually
requires kept for years), the catalog, users' profiles, reviews and conversations. Removing one
person's data entirely is ``shoplm forget``, not retention.

Example:
    >>> import pandas as pd
    >>> from shoplm.config import SchedulerSettings
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> day = 86_400_000
    >>> _ = store.upsert("events", pd.DataFrame({"event_id": ["old", "new"], "user_id": "u1", "item_id": "a",
    ...     "event_type": "view", "ts_ms": [1 * day, 40 * day], "scene": "", "query": "", "session_id": "",
    ...     "suspected_bot": False}))
    >>> apply_retention(store, SchedulerSettings(retention_days=30), now_ms=45 * day).events_deleted
    1
    >>> store.frame("events")["event_id"].tolist()
    ['new']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shoplm.config import SchedulerSettings
from shoplm.store import Store

DAY_MS = 86_400_000


@dataclass(frozen=True)
class RetentionResult:
    """What one retention pass removed; ``events_cutoff_ms`` is None when events are kept forever."""

    events_cutoff_ms: int | None
    events_deleted: int
    runs_deleted: int

    def summary(self) -> str:
        """One line for the job's run record."""
        if self.events_cutoff_ms is None:
            events = "events kept forever (retention_days = 0)"
        else:
            cutoff = datetime.fromtimestamp(self.events_cutoff_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            events = f"deleted {self.events_deleted:,} events older than {cutoff}"
        return f"{events}; deleted {self.runs_deleted:,} old job runs"


def apply_retention(store: Store, settings: SchedulerSettings, *, now_ms: int) -> RetentionResult:
    """Delete the events and job runs that the retention settings no longer keep.

    Args:
        store: the shop's store.
        settings: ``Settings.scheduler`` (``retention_days``, ``run_history_days``).
        now_ms: the current time (epoch ms; the scheduler passes its clock's).

    Returns:
        How much was deleted, and the events' cutoff.
    """
    cutoff = now_ms - settings.retention_days * DAY_MS if settings.retention_days > 0 else None
    deleted = store.events.delete_older_than(cutoff) if cutoff is not None else 0
    runs = store.jobs.delete_older_than(now_ms - settings.run_history_days * DAY_MS)
    return RetentionResult(cutoff, deleted, runs)
