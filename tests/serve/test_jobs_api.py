"""``GET /v1/jobs`` and the dashboard's jobs panel; the scheduler inside the app holds the lease while it runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplm.app.scheduler import JOBS, Scheduler
from shoplm.serve import create_app
from tests.serve.conftest import Shop, shop_settings


@pytest.fixture
def client(shop_copy: Path) -> Iterator[TestClient]:
    # No scheduler in the app: the runs shown are the test's own.
    with TestClient(create_app(shop_settings(shop_copy, scheduler={"in_server": False}))) as test_client:
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def _state(client: TestClient):
    return client.app.state.shoplm  # type: ignore[attr-defined]


def test_jobs_list_every_job_then_its_last_run_and_outcome(client: TestClient, shop: Shop) -> None:
    before = client.get("/v1/jobs", headers=_read(shop))
    assert before.status_code == 200, before.text
    body = before.json()
    assert [j["name"] for j in body["jobs"]] == list(JOBS)
    assert all(j["last_run"] is None and j["next_run"] and j["enabled"] for j in body["jobs"])
    assert body["runs"] == [] and body["retention_days"] == 0

    state = _state(client)

    def fails(_ctx: object) -> str:
        raise RuntimeError("webhook host unreachable")

    jobs = {"retention": JOBS["retention"], "alerts": JOBS["alerts"], "fraud": fails}
    scheduler = Scheduler(state.store, state.settings, jobs=jobs)
    for name in ("retention", "alerts", "fraud"):
        scheduler.run_job(name)
    after = client.get("/v1/jobs", headers=_read(shop)).json()
    last = {j["name"]: j["last_run"] for j in after["jobs"]}
    assert last["retention"]["outcome"] == "ok" and "events kept forever" in last["retention"]["message"]
    assert last["alerts"]["outcome"] == "skipped" and "no webhook" in last["alerts"]["message"]
    assert last["fraud"]["outcome"] == "failed" and last["fraud"]["message"] == "RuntimeError: webhook host unreachable"
    assert last["train"] is None
    assert [r["job"] for r in after["runs"]] == ["fraud", "alerts", "retention"]  # newest first
    assert all(r["finished"] >= r["started"] and r["seconds"] >= 0 for r in after["runs"])
    assert [r["job"] for r in client.get("/v1/jobs", params={"runs": 1}, headers=_read(shop)).json()["runs"]] == [
        "fraud"
    ]


def test_jobs_need_a_key_and_a_sane_limit(client: TestClient, shop: Shop) -> None:
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", params={"runs": -1}, headers=_read(shop)).status_code == 422
    assert client.get("/v1/jobs", params={"runs": "many"}, headers=_read(shop)).status_code == 422


def test_the_apps_scheduler_runs_a_missed_job_at_start_and_gives_the_lease_up_at_stop(
    shop_copy: Path, shop: Shop
) -> None:
    from shoplm.store import Store

    settings = shop_settings(shop_copy, scheduler={"poll_seconds": 0.05, "in_server": True})
    two_days_ago = _now() - 2 * 86_400_000
    with Store.open(settings.database_url) as store:  # retention last ran two days ago: it missed a slot
        store.jobs.finish(
            store.jobs.start("retention", started_ms=two_days_ago), finished_ms=two_days_ago, outcome="ok"
        )
    app = create_app(settings)
    with TestClient(app) as client:
        store = app.state.shoplm.store
        for _ in range(400):  # up to 20 s of polls
            if store.jobs.last_runs()["retention"]["started_ms"] > two_days_ago:
                break
            threading.Event().wait(0.05)
        run = client.get("/v1/jobs", headers=_read(shop)).json()
        last = {j["name"]: j["last_run"] for j in run["jobs"]}
        assert last["retention"]["outcome"] in ("running", "ok") and last["retention"]["started"] > _iso(two_days_ago)
        holder = store.jobs.lease_holder("scheduler", now_ms=_now())
        assert holder is not None and run["scheduler"] == holder
        assert [r["job"] for r in run["runs"]].count("retention") == 2  # once, not once per missed slot
    with Store.open(settings.database_url) as reopened:
        assert reopened.jobs.lease_holder("scheduler", now_ms=_now()) is None
        assert reopened.jobs.last_runs()["retention"]["outcome"] == "ok"


def test_no_scheduler_in_the_app_when_switched_off(shop_copy: Path, shop: Shop) -> None:
    settings = shop_settings(shop_copy, scheduler={"poll_seconds": 0.05, "in_server": False})
    app = create_app(settings)
    with TestClient(app) as client:
        threading.Event().wait(0.5)  # ten polls' time: a scheduler would have taken the lease
        assert client.get("/v1/jobs", headers=_read(shop)).json()["scheduler"] is None


def test_the_dashboard_panel_shows_jobs_and_a_chart_of_runs(client: TestClient, shop: Shop) -> None:
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    empty = client.get("/dashboard/fragments/jobs")
    assert empty.status_code == 200 and 'id="jobs-table"' in empty.text and 'id="jobs-empty"' in empty.text
    assert empty.text.count("<tr data-job=") == len(JOBS)
    state = _state(client)
    scheduler = Scheduler(state.store, state.settings)
    for name in ("retention", "alerts"):
        scheduler.run_job(name)
    panel = client.get("/dashboard/fragments/jobs").text
    chart = panel.split('id="jobs-chart"', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<rect") == 2 + 3  # a bar per run, and the legend's three outcomes
    assert "#2f9e44" in chart and "#adb5bd" in chart  # ok and skipped
    assert "retention ok" in chart and "alerts skipped" in chart
    assert 'id="jobs-chart"' in panel and "jobs-empty" not in panel
    client.cookies.clear()
    assert client.get("/dashboard/fragments/jobs").status_code == 401


def _iso(ms: int) -> str:
    from shoplm.app.scheduler import iso_utc

    return str(iso_utc(ms))


def _now() -> int:
    import time

    return int(time.time() * 1000)
