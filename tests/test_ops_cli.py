"""``shoplm scheduler``, ``shoplm backup`` and ``shoplm restore`` through the command line (typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.config import Settings
from shoplm.store import Store

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def flat(result) -> str:
    """The output with line breaks (the console wraps long paths) made spaces."""
    return " ".join(result.output.split())


def events(*ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": list(ids),
            "user_id": "u1",
            "item_id": "i1",
            "event_type": "view",
            "ts_ms": 1_700_000_000_000,
            "scene": "",
            "query": "",
            "session_id": "",
            "suspected_bot": False,
        }
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def event_ids(data_dir: Path) -> list[str]:
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        return sorted(store.frame("events", ["event_id"])["event_id"])


def test_backup_and_restore_with_confirmation(data_dir: Path, tmp_path: Path) -> None:
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        store.upsert("events", events("e1", "e2"))
    backup = tmp_path / "shop.backup"
    made = invoke("backup", str(backup), "--data-dir", str(data_dir))
    assert made.exit_code == 0, made.output
    assert "sqlite backup written" in flat(made) and "secret.key" in flat(made)
    again = invoke("backup", str(backup), "--data-dir", str(data_dir))
    assert again.exit_code == 2 and "exists already" in flat(again)
    assert invoke("backup", str(backup), "--force", "--data-dir", str(data_dir)).exit_code == 0

    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        store.upsert("events", events("e3"))
    unconfirmed = invoke("restore", str(backup), "--data-dir", str(data_dir))
    assert unconfirmed.exit_code == 2 and "add --yes" in flat(unconfirmed)
    assert event_ids(data_dir) == ["e1", "e2", "e3"]
    restored = invoke("restore", str(backup), "--yes", "--data-dir", str(data_dir))
    assert restored.exit_code == 0, restored.output
    assert "restored" in flat(restored) and "2 events" in flat(restored)
    assert event_ids(data_dir) == ["e1", "e2"]
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        # The restored audit log is the (second) backup's own, plus the restore itself.
        assert [e["action"] for e in store.audit.entries()] == ["backup", "restore"]


def test_restore_refuses_a_missing_or_corrupt_file_with_exit_2(data_dir: Path, tmp_path: Path) -> None:
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        store.upsert("events", events("e1"))
    missing = invoke("restore", str(tmp_path / "nope.backup"), "--yes", "--data-dir", str(data_dir))
    assert missing.exit_code == 2 and "no such backup file" in flat(missing)
    corrupt = tmp_path / "corrupt.backup"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\x07" * 8000)
    refused = invoke("restore", str(corrupt), "--yes", "--data-dir", str(data_dir))
    assert refused.exit_code == 2 and "corrupt" in flat(refused)
    assert "Traceback" not in flat(refused)
    assert event_ids(data_dir) == ["e1"]


def test_scheduler_once_runs_what_is_due_and_status_shows_it(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for job in ("train", "forecast", "churn", "fraud", "opinion"):
        monkeypatch.setenv(f"SHOPLM_SCHEDULER__{job.upper()}__ENABLED", "false")
    monkeypatch.setenv("SHOPLM_SCHEDULER__RETENTION_DAYS", "30")
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        store.upsert("events", events("old"))  # from 2023: older than 30 days
    first = invoke("scheduler", "--once", "--data-dir", str(data_dir))
    assert first.exit_code == 0, first.output
    assert "ok retention: deleted 1 events older than" in flat(first)
    assert "skipped alerts: no webhook configured" in flat(first)
    assert event_ids(data_dir) == []
    second = invoke("scheduler", "--once", "--data-dir", str(data_dir))
    assert second.exit_code == 0 and "nothing due" in flat(second)
    forced = invoke("scheduler", "--once", "--job", "retention", "--data-dir", str(data_dir))
    assert forced.exit_code == 0 and "retention" in flat(forced)

    status = json.loads(invoke("scheduler", "--status", "--data-dir", str(data_dir)).output)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["retention"]["last_run"]["outcome"] == "ok" and jobs["retention"]["next_run"]
    assert jobs["alerts"]["last_run"]["outcome"] == "skipped"
    assert jobs["train"]["enabled"] is False and jobs["train"]["last_run"] is None
    assert [r["job"] for r in status["runs"]] == ["retention", "alerts", "retention"]
    assert status["scheduler"] is None  # --once gave the lease up


def test_scheduler_refuses_bad_options_and_a_held_lease(data_dir: Path) -> None:
    unknown = invoke("scheduler", "--once", "--job", "nope", "--data-dir", str(data_dir))
    assert unknown.exit_code == 2 and "unknown job(s) nope" in flat(unknown)
    without_once = invoke("scheduler", "--job", "retention", "--data-dir", str(data_dir))
    assert without_once.exit_code == 2 and "use it with --once" in flat(without_once)
    with Store.open(Settings(data_dir=data_dir).database_url) as store:
        assert store.jobs.acquire_lease("scheduler", "server:42", now_ms=0, ttl_ms=10**13)
    held = invoke("scheduler", "--once", "--data-dir", str(data_dir))
    assert held.exit_code == 2 and "another process runs the scheduled jobs (server:42)" in flat(held)
