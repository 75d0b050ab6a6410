"""Fixtures of the HTTP service tests: one small trained shop built once, copied per test that writes.

The base shop (60 items, 60 users, ~2,000 events, every recommender trained with a short
sequential budget, the demo's orders and policies, and the assistant's models) is
built once per session; tests that write get their own copy of its data directory, so they
can also run the real server on it in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shoplm.config import Settings
from shoplm.store import Store

PSEUDONYMIZATION_KEY = "serve-tests"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Shop:
    """The built shop: where it is, its keys (the secrets), users with histories and items."""

    data_dir: Path
    keys: dict[str, str]
    users: list[str]
    items: list[str]
    categories: dict[str, str] = field(default_factory=dict)
    #: the orders of ``users`` (the shop's ids): user -> [(order id, status)], oldest first
    orders: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: the same for every user of the shop
    all_orders: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def settings(self, data_dir: Path | None = None, **overrides: object) -> Settings:
        return shop_settings(data_dir or self.data_dir, **overrides)


def shop_settings(data_dir: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": data_dir,
        "pseudonymization_key": PSEUDONYMIZATION_KEY,
        "recommend": {"sequential_minutes": 0.05},
        "server": {"rate_limit_per_second": 0},
        # No scheduled job (training at 02:00, say) may start inside an unrelated test's app.
        "scheduler": {"in_server": False},
    }
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            base[name] = {**base[name], **value}  # type: ignore[dict-item]
        else:
            base[name] = value
    return Settings(**base)  # type: ignore[arg-type]


SampleKey = tuple[str, frozenset[tuple[str, str]]]


def sample_key(name: str, **labels: str) -> SampleKey:
    return name, frozenset(labels.items())


def metric_samples(text: str, *, by_worker: bool = False) -> dict[SampleKey, float]:
    """The samples of a Prometheus text page by name and labels; unless ``by_worker``, summed over workers' ``pid``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if by_worker or k != "pid"}
            key = sample_key(sample.name, **labels)
            found[key] = found.get(key, 0.0) + sample.value
    return found


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    from shoplm.app import analytics, jobs
    from shoplm.app.assistant import Assistant
    from shoplm.app.keys import KeyStore
    from shoplm.app.reviews import score_reviews
    from shoplm.assistant.training import train_assistant
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("serve-shop")
    source = root / "source"
    manifest = generate_demo_store(source, seed=7, sizes=DemoSizes(n_items=60, n_users=60, n_events=2_000))
    settings = shop_settings(root / "data")
    store = Store.open(settings.database_url)
    try:
        for kind in ("items", "users", "events"):
            ingest(kind, manifest.files[kind], store=store, settings=settings)
        jobs.encode_catalog(store, settings, progress=False)
        jobs.train_recommenders(store, settings)
        # The assistant's ground: orders (ingested after training, so the recommenders are
        # trained on events alone as before) and the shop's policies where the assistant looks.
        ingest("orders", manifest.files["orders"], store=store, settings=settings)
        # Reviews (with their orders above): review insight and reply drafting read them.
        ingest("reviews", manifest.files["reviews"], store=store, settings=settings)
        # Impression logs (~1,900 rows): the CTR routes and the dashboard's CTR panel read them.
        ingest("impressions", manifest.files["impressions"], store=store, settings=settings)
        score_reviews(store, settings)  # their sentiment, by the shipped model (a few dozen texts)
        # The analytics results the routes and the dashboard's panels serve.
        for job in (
            analytics.run_churn,
            analytics.run_segments,
            analytics.run_pricing,
            analytics.run_fraud,
            analytics.run_forecast,
        ):
            job(store, settings)
        shutil.copytree(manifest.policies_dir, settings.data_dir / "policies")
        # The assistant's models (intents, sentiment), trained once per session: a service loads
        # them instead of training on its first message (tens of seconds on 2 busy cores).
        train_assistant(settings)
        Assistant.load(store, settings)  # encodes the policy passages into the data directory's embedding cache
        keys = KeyStore(store)
        secrets = {scope: keys.create(scope, name=f"test {scope}").secret for scope in ("read", "write", "admin")}
        catalog = store.items.catalog(["item_id", "category"])
    finally:
        store.close()
    events = _read(manifest.files["events"])
    users = events["user_id"].astype(str).value_counts().index[:10].tolist()
    order_rows = _read(manifest.files["orders"]).drop_duplicates("order_id").sort_values("created_at")
    all_orders: dict[str, list[tuple[str, str]]] = {}
    for row in order_rows[order_rows["user_id"].notna()].itertuples(index=False):
        all_orders.setdefault(str(row.user_id), []).append((str(row.order_id), str(row.status)))
    orders = {user: all_orders[user] for user in users if user in all_orders}
    return Shop(
        data_dir=root / "data",
        keys=secrets,
        users=users,
        items=catalog["item_id"].tolist(),
        categories=dict(zip(catalog["item_id"], catalog["category"], strict=True)),
        orders=orders,
        all_orders=all_orders,
    )


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


@pytest.fixture
def shop_copy(shop: Shop, tmp_path: Path) -> Path:
    """A private copy of the shop's data directory (for tests that write)."""
    target = tmp_path / "shop-data"
    shutil.copytree(shop.data_dir, target)
    return target


# -- a real server in a subprocess ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``shoplm serve`` on 127.0.0.1 and a free port, started and killed by the test."""

    def __init__(
        self, data_dir: Path, *, env: dict[str, str] | None = None, port: int | None = None, workers: int = 2
    ) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 120.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLM_") or k == "SHOPLM_TEST_POSTGRES_URL"}
        env.update(
            {
                "SHOPLM_PSEUDONYMIZATION_KEY": PSEUDONYMIZATION_KEY,
                "SHOPLM_SERVER__RATE_LIMIT_PER_SECOND": "0",
                "SHOPLM_RECOMMEND__SEQUENTIAL_MINUTES": "0.05",
                "OMP_NUM_THREADS": "1",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                **self.extra_env,
            }
        )
        command = [sys.executable, "-m", "shoplm.cli", "serve", "--data-dir", str(self.data_dir)]
        command += ["--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"server not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def worker_versions(self) -> dict[str, str]:
        """Worker pid -> the model version it serves, from ``/metrics``."""
        samples = metric_samples(httpx.get(self.url + "/metrics", timeout=10).text, by_worker=True)
        return {
            dict(labels)["pid"]: dict(labels)["version"]
            for (name, labels), value in samples.items()
            if name == "shoplm_model_version_info" and value == 1 and "pid" in dict(labels)
        }

    def wait_for_workers(self, timeout: float = 120.0) -> dict[str, str]:
        """Wait until every worker has loaded its models; their versions by pid."""
        deadline = time.monotonic() + timeout
        versions = self.worker_versions()
        while len(versions) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
            versions = self.worker_versions()
        assert len(versions) == self.workers, f"{len(versions)} of {self.workers} workers ready: {versions}"
        return versions

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_factory() -> Iterator[type[ServerProcess]]:
    """Start servers with ``server_factory(data_dir, env=...).start()``; all are stopped at the end."""
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def start(self, timeout: float = 120.0) -> ServerProcess:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for server in started:
        server.stop()
