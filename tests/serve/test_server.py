"""The real server in a subprocess: no acknowledged event is lost to SIGKILL; models reload under load."""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from shoplm.app import jobs
from shoplm.store import Store
from tests.serve.conftest import ServerProcess, Shop

pytestmark = pytest.mark.slow


def test_no_acknowledged_event_is_lost_when_the_server_is_killed(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy).start()
    headers = {"X-API-Key": shop.keys["write"]}
    acknowledged: list[str] = []
    sent_batches = itertools.count()
    stop = threading.Event()
    errors: list[str] = []

    def post_batches() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for n in sent_batches:  # bounded by the stop event and the 60 s below
                if stop.is_set():
                    return
                ids = [f"dur-{n}-{i}" for i in range(20)]
                batch = {
                    "events": [
                        {"event_id": e, "user_id": f"user-{i % 7}", "item_id": shop.items[i], "event_type": "view"}
                        for i, e in enumerate(ids)
                    ]
                }
                try:
                    response = client.post("/v1/events", json=batch)
                except httpx.HTTPError:
                    return  # the server died mid-request: this batch was never acknowledged
                if response.status_code == 200:
                    assert response.json()["accepted"] + response.json()["duplicates"] == 20
                    acknowledged.extend(ids)
                else:
                    errors.append(response.text)

    sender = threading.Thread(target=post_batches)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline and sender.is_alive():
        time.sleep(0.02)
    server.kill()  # SIGKILL mid-load: no shutdown handler, no flush
    stop.set()
    sender.join(timeout=30)
    assert not errors, errors[:3]
    assert len(acknowledged) >= 300, "the load did not get going"

    restarted = server_factory(shop_copy, port=server.port).start()
    store = Store.open(shop.settings(shop_copy).database_url)
    try:
        stored = set(store.frame("events", ["event_id"])["event_id"])
    finally:
        store.close()
    lost = [e for e in acknowledged if e not in stored]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged events lost, e.g. {lost[:5]}"
    # The restarted server takes events again, and a resent batch is not stored twice.
    again = httpx.post(
        restarted.url + "/v1/events",
        json={
            "events": [
                {"event_id": acknowledged[0], "user_id": "user-0", "item_id": shop.items[0], "event_type": "view"}
            ]
        },
        headers=headers,
    ).json()
    assert (again["inserted"], again["duplicates"]) == (0, 1)


def _live_version(metrics: str) -> str | None:
    found = re.search(r'shoplm_model_version_info\{version="([^"]+)"\} 1', metrics)
    return found.group(1) if found else None


def test_a_new_model_version_is_picked_up_while_requests_keep_succeeding(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy, env={"SHOPLM_SERVER__RELOAD_SECONDS": "0.5"}).start()
    headers = {"X-API-Key": shop.keys["read"]}
    before = _live_version(httpx.get(server.url + "/metrics").text)
    assert before
    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for n in itertools.count():
                if stop.is_set() or n > 20_000:
                    return
                user = shop.users[(n + worker) % len(shop.users)]
                if n % 3 == 2:
                    response = client.get(f"/v1/items/{shop.items[n % len(shop.items)]}/similar", params={"k": 5})
                else:
                    response = client.get("/v1/recommendations", params={"user_id": user, "k": 5})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    answered.append(response.json()["model_version"])

    workers = [threading.Thread(target=load, args=(w,)) for w in range(2)]
    for worker in workers:
        worker.start()
    try:
        # Let the old version answer first: a quick training run could otherwise publish before any request.
        warm_until = time.monotonic() + 30
        while len(answered) < 5 and not failures and time.monotonic() < warm_until:
            time.sleep(0.05)
        settings = shop.settings(shop_copy, recommend={"sequential": False, "ranker": False})
        store = Store.open(settings.database_url)
        try:
            jobs.train_recommenders(store, settings)  # publishes a new version while the server runs
        finally:
            store.close()
        deadline = time.monotonic() + 60
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.25)
            after = _live_version(httpx.get(server.url + "/metrics").text)
        time.sleep(1.0)  # requests keep flowing on the new models for a moment
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert after != before, "the server did not load the new version"
    assert not failures, failures[:3]
    assert len(answered) > 20
    assert answered[-1] == after and before in answered  # served by the old, then by the new models
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["model_version"] == after
    assert "shoplm_model_reloads 1" in httpx.get(server.url + "/metrics").text
