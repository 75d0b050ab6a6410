"""The real server in subprocesses, with several workers: no acknowledged event is lost to SIGKILL of the
server or of a worker, a dead worker is replaced, two servers share a SQLite file, rate limits and metrics
span the workers, and every worker picks up a new model version under load."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shoplm.app import jobs
from shoplm.store import Store
from tests.serve.conftest import PSEUDONYMIZATION_KEY, ServerProcess, Shop, metric_samples, sample_key

pytestmark = pytest.mark.slow


class EventSenders:
    """Threads posting events until stopped; they remember every event id acknowledged with a 200.

    ``sizes`` gives each thread's batch size (1 is what a storefront sends; several threads make
    concurrent requests share commits). A request that fails on the network (a worker killed
    under it) is not acknowledged, and must fail, not hang: the client's timeout is 10 s.
    """

    def __init__(self, urls: list[str], key: str, items: list[str], sizes: tuple[int, ...] = (1, 1, 20)) -> None:
        self.urls, self.key, self.items, self.sizes = urls, key, items, sizes
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.network_errors = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(n,)) for n in range(len(sizes))]

    def __enter__(self) -> EventSenders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a sender hung"

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.acknowledged) >= count, f"the load did not get going: {len(self.acknowledged)} acknowledged"

    def _send(self, sender: int) -> None:
        size, url = self.sizes[sender], self.urls[sender % len(self.urls)]
        with httpx.Client(base_url=url, headers={"X-API-Key": self.key}, timeout=10) as client:
            for n in itertools.count():  # bounded by the stop event
                if self.stop.is_set():
                    return
                ids = [f"dur-{sender}-{n}-{i}" for i in range(size)]
                events = [
                    {"event_id": e, "user_id": f"user-{i % 7}", "item_id": self.items[i], "event_type": "view"}
                    for i, e in enumerate(ids)
                ]
                try:
                    response = client.post("/v1/events", json={"events": events})
                except httpx.HTTPError:
                    self.network_errors += 1  # killed mid-request: never acknowledged
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    assert response.json()["accepted"] + response.json()["duplicates"] == size
                    self.acknowledged.extend(ids)
                else:
                    self.errors.append(response.text)


def assert_all_stored(data_dir: Path, shop: Shop, acknowledged: list[str]) -> None:
    store = Store.open(shop.settings(data_dir).database_url)
    try:
        stored = set(store.frame("events", ["event_id"])["event_id"])
    finally:
        store.close()
    lost = [e for e in acknowledged if e not in stored]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged events lost, e.g. {lost[:5]}"


def _workers(server: ServerProcess) -> list[psutil.Process]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    assert server.proc is not None
    found = []
    for child in psutil.Process(server.proc.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_no_acknowledged_event_is_lost_when_the_server_is_killed(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy).start()
    workers = _workers(server)
    assert len(workers) == 2
    with EventSenders([server.url], shop.keys["write"], shop.items) as senders:
        senders.wait_for(300)
        server.kill()  # SIGKILL of the server process mid-load: no shutdown handler, no flush
    assert not senders.errors, senders.errors[:3]
    # Its workers do not outlive it (they hold the port a restart needs).
    _gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"workers still running after their server died: {alive}"

    restarted = server_factory(shop_copy, port=server.port).start()
    assert_all_stored(shop_copy, shop, senders.acknowledged)
    # The restarted server takes events again, and a resent batch is not stored twice.
    again = httpx.post(
        restarted.url + "/v1/events",
        json={
            "events": [
                {
                    "event_id": senders.acknowledged[0],
                    "user_id": "user-0",
                    "item_id": shop.items[0],
                    "event_type": "view",
                }
            ]
        },
        headers={"X-API-Key": shop.keys["write"]},
    ).json()
    assert (again["inserted"], again["duplicates"]) == (0, 1)


def test_a_killed_worker_is_replaced_and_loses_nothing_acknowledged(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy).start()
    server.wait_for_workers()
    with EventSenders([server.url], shop.keys["write"], shop.items) as senders:
        senders.wait_for(200)
        victim = _workers(server)[0]
        victim.kill()  # SIGKILL of one worker: the requests it held fail, the others go on
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = {w.pid for w in _workers(server)}
            if len(pids) == 2 and victim.pid not in pids and len(server.worker_versions()) == 2:
                break
            time.sleep(0.2)
        before = len(senders.acknowledged)
        senders.wait_for(before + 100)  # both workers (the new one too) keep acknowledging
    assert not senders.errors, senders.errors[:3]
    pids = {w.pid for w in _workers(server)}
    assert len(pids) == 2 and victim.pid not in pids, "the dead worker was not replaced"
    assert set(server.worker_versions()) == {str(pid) for pid in pids}
    assert_all_stored(shop_copy, shop, senders.acknowledged)
    # /metrics sums every worker's counters, the dead one's included.
    counted = metric_samples(httpx.get(server.url + "/metrics").text)
    assert counted[sample_key("shoplm_events_accepted_total")] >= len(set(senders.acknowledged))


def test_two_servers_on_one_sqlite_file_keep_every_acknowledged_event(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    first = server_factory(shop_copy, workers=1).start()
    second = server_factory(shop_copy, workers=1).start()
    with EventSenders([first.url, second.url], shop.keys["write"], shop.items, sizes=(1, 1, 20, 20)) as senders:
        senders.wait_for(600)
    assert not senders.errors, senders.errors[:3]
    first.stop()
    second.stop()
    assert_all_stored(shop_copy, shop, senders.acknowledged)


def test_a_keys_rate_limit_holds_across_workers(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    env = {"SHOPLM_SERVER__RATE_LIMIT_PER_SECOND": "1", "SHOPLM_SERVER__RATE_LIMIT_BURST": "6"}
    server = server_factory(shop_copy, env=env).start()
    server.wait_for_workers()
    answers: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": shop.keys["read"]}, timeout=10) as client:
            for _ in range(10):
                answers.append(client.get("/v1/recommendations", params={"k": 3}).status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(6)]  # connections spread over both workers
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    allowed = answers.count(200)
    # One bucket for the key: the burst plus what refilled meanwhile (each worker alone would allow that much).
    assert allowed <= 6 + elapsed * 1 + 1, (allowed, elapsed)
    assert allowed >= 6 and answers.count(429) == len(answers) - allowed


def test_a_new_model_version_is_picked_up_while_requests_keep_succeeding(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy, env={"SHOPLM_SERVER__RELOAD_SECONDS": "0.5"}).start()
    headers = {"X-API-Key": shop.keys["read"]}
    (before,) = set(server.wait_for_workers().values())  # every worker serves the same version
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
        versions = server.worker_versions()
        while (before in versions.values() or len(versions) < 2) and time.monotonic() < deadline:
            time.sleep(0.25)
            versions = server.worker_versions()
        (after,) = set(versions.values()) if len(set(versions.values())) == 1 else (None,)
        time.sleep(1.0)  # requests keep flowing on the new models for a moment
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert after is not None and after != before, f"every worker should serve the new version: {versions}"
    assert not failures, failures[:3]
    assert len(answered) > 20
    assert answered[-1] == after and before in answered  # served by the old, then by the new models
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["model_version"] == after
    reloads = metric_samples(httpx.get(server.url + "/metrics").text, by_worker=True)
    assert sorted(v for (name, _), v in reloads.items() if name == "shoplm_model_reloads") == [1.0, 1.0]


def test_a_serving_process_loads_without_torch_lightgbm_or_scikit_learn(shop: Shop) -> None:
    # The service's load path reads exported models (numpy, ONNX Runtime): the training
    # libraries would add seconds to every worker's start and hundreds of MB to its memory.
    probe = f"""
import json, sys
from shoplm.app.assistant import Assistant
from shoplm.app.recommender import ShopRecommender
from shoplm.config import Settings
from shoplm.store import Store
settings = Settings(data_dir={str(shop.data_dir)!r}, pseudonymization_key={PSEUDONYMIZATION_KEY!r})
store = Store.open(settings.database_url)
recommender = ShopRecommender.load(store, settings)
recs = recommender.recommend({shop.users[0]!r}, scene="home", k=5)
bot = Assistant.load(store, settings, recommender=recommender.recommend)
turn = bot.reply("probe-conversation", {shop.users[0]!r}, "where is my order?")
heavy = [m for m in ("torch", "lightgbm", "sklearn", "transformers", "peft") if m in sys.modules]
print(json.dumps({{"recs": len(recs), "reply": bool(turn.text), "heavy": heavy}}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"recs": 5, "reply": True, "heavy": []}


def test_a_key_revoked_by_another_process_stops_working_on_every_worker_within_a_second(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    from shoplm.app.keys import KeyStore

    server = server_factory(shop_copy).start()
    server.wait_for_workers()
    store = Store.open(shop.settings(shop_copy).database_url)
    try:
        created = KeyStore(store).create("read", name="revoked soon")
        headers = {"X-API-Key": created.secret}
        # Many connections: every worker verifies the key and caches it.
        clients = [httpx.Client(base_url=server.url, headers=headers, timeout=10) for _ in range(8)]
        assert {c.get("/v1/recommendations", params={"k": 1}).status_code for c in clients} == {200}
        assert KeyStore(store).revoke(created.key.key_id)  # as `shoplm keys revoke` does, from its own process
        revoked_at = time.monotonic()
        time.sleep(1.2)  # the workers' cache re-reads a key at least once a second
        codes = [c.get("/v1/recommendations", params={"k": 1}).status_code for c in clients for _ in range(3)]
        assert time.monotonic() - revoked_at < 5
        assert set(codes) == {401}, codes
        for client in clients:
            client.close()
    finally:
        store.close()
