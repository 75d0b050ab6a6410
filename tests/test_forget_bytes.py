"""The proof that a forgotten user leaves no bytes behind, anywhere under the data directory.

A small demo shop is built in a temporary data directory (its source files inside it, as
``shoplm demo`` leaves them), with every quick model trained and published, churn scores and
segments computed, the user's texts in the embedding cache and a rejects file naming them.
After ``forget`` (which checkpoints and VACUUMs the database), the bytes of every file are
searched for the user's raw id, pseudonym and texts: none is found, while another user's data
is still there and the models still load and serve.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.config import Settings
from shoplm.errors import NotFoundError
from shoplm.estimator import Estimator
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.lm.cache import EmbeddingCache, text_key
from shoplm.store import Store


@dataclass
class BuiltShop:
    settings: Settings
    store: Store
    user: str  # the shop's raw id of the user to forget
    other: str  # a user who stays


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, dtype=str)


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> BuiltShop:
    """The shop, built once for the module (each test works on its own copy)."""
    tmp_path = tmp_path_factory.mktemp("forget-shop")
    from shoplm.app import analytics, jobs
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    settings = Settings(
        data_dir=tmp_path / "data",
        pseudonymization_key="forget-test",
        recommend={"sequential": False},
        ingest={"chunk_rows": 1000},
    )
    manifest = generate_demo_store(
        settings.data_dir / "demo-source", seed=3, sizes=DemoSizes(n_items=60, n_users=50, n_events=1500)
    )
    store = Store.open(settings.database_url)
    for kind in ("items", "users", "events", "orders", "reviews", "conversations"):
        ingest(kind, manifest.files[kind], store=store, settings=settings)
    # The user: one with events, orders and a review of their own, and a conversation if any has one.
    frames = {kind: _read(manifest.files[kind]) for kind in ("events", "orders", "reviews", "conversations")}
    with_all = set(frames["events"]["user_id"].dropna()) & set(frames["orders"]["user_id"].dropna())
    with_all &= set(frames["reviews"]["user_id"].dropna())
    talking = with_all & set(frames["conversations"]["user_id"].dropna())
    user = sorted(talking or with_all)[0]
    other = sorted(set(frames["events"]["user_id"]) - {user})[0]
    # A rejects file naming the user (an unknown event type), written where ingest writes it: beside its input.
    inbox = settings.data_dir / "inbox"
    inbox.mkdir()
    bad = pd.DataFrame(
        {
            "event_id": ["bad-1", "bad-2"],
            "user_id": [user, other],
            "item_id": [frames["events"]["item_id"].iloc[0]] * 2,
            "event_type": ["teleport", "teleport"],
            "timestamp": ["2026-01-02T03:04:05Z"] * 2,
        }
    )
    bad.to_csv(inbox / "late-events.csv", index=False)
    report = ingest("events", inbox / "late-events.csv", store=store, settings=settings)
    assert report.rejected == 2 and report.rejects_path is not None and report.rejects_path.is_file()
    # Models: every quick recommender (a published version), churn and segments.
    assert jobs.train_recommenders(store, settings)
    for job in (analytics.run_churn, analytics.run_segments):
        job(store, settings)
    # The user's texts in the embedding cache, as an encoder leaves them (vectors keyed by the
    # texts' hashes), without loading a language model for it.
    pseudonym = Pseudonymizer(settings.hmac_key).user(user)
    cache = EmbeddingCache(settings.cache_dir / "embeddings", "test-encoder", dim=4)
    texts = store.erasure.texts(pseudonym)
    cache.put_many("passage", [(text_key(t), np.full(4, i, dtype=np.float32)) for i, t in enumerate(texts)])
    store.close()
    return BuiltShop(settings, store, user, other)


@pytest.fixture
def built(built_once: BuiltShop, tmp_path: Path) -> Iterator[BuiltShop]:
    """A private copy of the built shop's data directory, its store open."""
    data_dir = tmp_path / "data"
    shutil.copytree(built_once.settings.data_dir, data_dir)
    settings = built_once.settings.model_copy(update={"data_dir": data_dir, "database_url": ""})
    settings = Settings(**{**settings.model_dump(), "pseudonymization_key": "forget-test", "database_url": ""})
    store = Store.open(settings.database_url)
    yield BuiltShop(settings, store, built_once.user, built_once.other)
    store.close()


def _files_with(root: Path, needles: list[bytes], raw_id: str) -> dict[str, list[str]]:
    """File -> which needles its bytes hold (the raw id as a whole token only: U00001 is not in U000012)."""
    # Each needle in UTF-8 and in UTF-32-LE, as numpy keeps strings (a model's strings.npz).
    wide = [(n, n.decode().encode("utf-32-le")) for n in needles]
    raw = re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(raw_id.encode()) + rb"(?![A-Za-z0-9_])")
    raw_wide = re.compile(
        rb"(?<![A-Za-z0-9_]\x00\x00\x00)" + re.escape(raw_id.encode("utf-32-le")) + rb"(?![A-Za-z0-9_]\x00\x00\x00)"
    )
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n.decode()[:30] for n, n32 in wide if n in data or n32 in data]
        if raw.search(data) or raw_wide.search(data):
            hits.append(raw_id)
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_nothing_of_a_forgotten_user_remains_on_disk(built: BuiltShop) -> None:
    from shoplm.app.erasure import forget_user, retraining_status
    from shoplm.app.recommender import ShopRecommender

    settings, store = built.settings, built.store
    pseudonym = Pseudonymizer(settings.hmac_key).user(built.user)
    other_pseudonym = Pseudonymizer(settings.hmac_key).user(built.other)
    texts = sorted(
        set(store.erasure.texts(pseudonym)) - store.erasure.texts_of_others(pseudonym, store.erasure.texts(pseudonym))
    )
    assert texts, "the chosen user wrote no text of their own: the test would search for less than it claims"
    needles = [pseudonym.encode(), *[t.encode() for t in texts]]
    store.erasure.compact()
    before = _files_with(settings.data_dir, needles, built.user)
    # The search can fail: before forgetting, the user is in the database, the sources and the rejects file.
    assert any(name.startswith("shoplm.sqlite") for name in before), before
    assert any(name.endswith(".rejects.csv") for name in before), before
    assert any(name.startswith("demo-source/") for name in before), before
    other_counts = store.erasure.counts(other_pseudonym)
    mine = store.erasure.counts(pseudonym)
    assert all(mine[table] > 0 for table in ("users", "events", "orders", "order_lines", "reviews", "messages")), mine

    report = forget_user(store, settings, built.user, verify=True)

    assert report.residue == []
    assert _files_with(settings.data_dir, needles, built.user) == {}
    assert report.rows["events"] > 0 and report.rows["users"] == 1 and report.rows["reviews"] > 0
    assert report.cached_vectors > 0
    assert any(name.endswith(".rejects.csv") for name in report.files)
    # Nothing of the user in the store; everything of the other user still there.
    assert not any(store.erasure.counts(pseudonym).values())
    assert store.erasure.counts(other_pseudonym) == other_counts
    rejects = next(settings.data_dir.rglob("*.rejects.csv")).read_text()
    assert built.other in rejects and "teleport" in rejects
    # The models still load and serve; the user now gets a visitor's answers; versions are flagged.
    shop = ShopRecommender.load(store, settings)
    visitor = [r.item_id for r in shop.recommend(None, k=5)]
    assert [r.item_id for r in shop.recommend(built.user, k=5)] == visitor
    assert shop.history(other_pseudonym)[0]
    status = retraining_status(settings)
    assert status["live_needs_retraining"] and f"versions/{status['live_version']}" in status["flagged"]
    # The audit entry names nobody.
    entry = store.audit.entries(action="forget")[-1]
    assert entry["actor"] == "cli" and entry["subject_hash"] and entry["details"]["rows"] == sum(report.rows.values())
    assert built.user not in json.dumps(entry) and pseudonym not in json.dumps(entry)


def test_forgetting_an_unknown_user_changes_nothing(built: BuiltShop) -> None:
    from shoplm.app.erasure import forget_user

    store = built.store
    counts = store.counts()
    files = {
        p: p.stat().st_mtime_ns for p in built.settings.data_dir.rglob("*") if p.is_file() and "sqlite" not in p.name
    }
    with pytest.raises(NotFoundError, match="no stored data of user 'nobody-at-all'"):
        forget_user(store, built.settings, "nobody-at-all")
    assert store.counts() == counts
    assert {p: p.stat().st_mtime_ns for p in files} == files


def test_a_running_server_reloads_without_the_users_model_rows(built: BuiltShop) -> None:
    from shoplm.app.erasure import forget_user
    from shoplm.serve.live import LiveModels
    from tests.app.test_erasure import UserTable

    settings, store = built.settings, built.store
    pseudonym = Pseudonymizer(settings.hmac_key).user(built.user)
    live = LiveModels(store, settings, warm_encoder=False)
    try:
        assert live.load()
        serving = live.version
        # A model of the live version keeping a row per user (as a user-factor model would).
        other = Pseudonymizer(settings.hmac_key).user(built.other)
        UserTable().fit([other, pseudonym]).save(settings.models_dir / "versions" / serving / "users")
        report = forget_user(store, settings, built.user)
        assert report.models_rewritten == [f"versions/{serving}/users"]
        # What the server's model watcher does every few seconds: a new version is live, it swaps.
        assert live.load() and live.version != serving
        rows = Estimator.load(settings.models_dir / "versions" / live.version / "users").user_ids_.tolist()
        assert rows == [other]
        visitor = [r.item_id for r in live.current.recommend(None, k=5)]
        assert [r.item_id for r in live.current.recommend(built.user, k=5)] == visitor
    finally:
        live.stop()
