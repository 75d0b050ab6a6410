"""Batch scoring (``shoplm precompute``): every user's home list, stored, and what serving does with it.

The Ray run of the same function is in tests/test_analytics_jobs.py (one Ray start for the suite's
fan-out tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplm.app.batch import precompute_candidates
from shoplm.app.recommender import ShopRecommender
from shoplm.cli.main import app
from shoplm.errors import InputError, ModelFileError
from shoplm.store import Store
from tests.serve.conftest import Shop, shop_settings

runner = CliRunner()


def _users(store: Store) -> list[str]:
    return store.events.frame(("user_id",), with_bots=False)["user_id"].drop_duplicates().astype(str).tolist()


def test_stored_lists_are_what_serving_computes_and_serving_answers_from_them(shop: Shop, shop_copy: Path) -> None:
    settings = shop.settings(shop_copy, recommend={"answer_cache": 0})
    with Store.open(settings.database_url) as store:
        report = precompute_candidates(store, settings, k=10, users_per_task=7)
        users = _users(store)
        assert report["users"] == len(users) == store.candidates.count(report["version"])
        assert report["tasks"] == -(-len(users) // 7) and report["ran_on"] == "local"
        live = ShopRecommender.load(store, settings)
        assert live.version == report["version"]
        for user in users:
            history, purchased = live.history(user)
            computed = live.engine.recommend(history, scene="home", k=10, purchased=purchased)
            assert store.candidates.get(user)["items"] == [r.to_dict() for r in computed]

        # Serving reads the stored list: a list changed in the table is what it answers ...
        user = users[0]
        row = store.candidates.get(user)
        changed = [dict(item, reason="from the batch") for item in reversed(row["items"])]
        store.candidates.replace(row["version"], [{"user_id": user, "basis": row["basis"], "items": changed}])
        answer = live.recommend(user, scene="home", k=5, pseudonymous=True)
        assert [r.item_id for r in answer] == [item["item_id"] for item in changed[:5]]
        assert {r.reason for r in answer} == {"from the batch"}
        # ... but not for another scene, nor once the user has a newer event than it was scored from.
        assert {r.reason for r in live.recommend(user, scene="cart", k=5, pseudonymous=True)} != {"from the batch"}
        newest = time.time_ns() // 1_000_000
        store.events.insert_batches([[_event_row(store, user, shop.items[-1], newest)]])
        fresh = live.recommend(user, scene="home", k=5, pseudonymous=True)
        assert "from the batch" not in {r.reason for r in fresh}


def _event_row(store: Store, user: str, item: str, ts_ms: int) -> dict[str, object]:
    """A full events row (every column), like the ingest path writes."""
    row = store.frame("events", limit=1).iloc[0].to_dict()
    row.update({"event_id": f"E-precompute-{ts_ms}", "user_id": user, "item_id": item, "event_type": "view"})
    row.update({"ts_ms": ts_ms, "suspected_bot": False})
    return row


def test_precompute_refuses_bad_input_and_a_shop_without_models(shop: Shop, tmp_path: Path) -> None:
    settings = shop.settings()
    with Store.open(settings.database_url) as store, pytest.raises(InputError, match="at least 1"):
        precompute_candidates(store, settings, k=0)
    empty = shop_settings(tmp_path / "empty")
    with Store.open(empty.database_url) as store, pytest.raises(ModelFileError, match="shoplm train"):
        precompute_candidates(store, empty)


def test_precompute_command(shop: Shop, shop_copy: Path) -> None:
    env = {"SHOPLM_PSEUDONYMIZATION_KEY": "serve-tests", "SHOPLM_DATA_DIR": str(shop_copy)}
    done = runner.invoke(app, ["precompute", "--users-per-task", "20"], env=env)
    assert done.exit_code == 0, done.output
    assert "home lists (k=10) scored by model version" in done.output and "on local" in done.output
    with Store.open(shop.settings(shop_copy).database_url) as store:
        assert store.candidates.count() == len(_users(store))
    bad = runner.invoke(app, ["precompute", "--ray-address", "nonsense"], env=env)
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output
    zero = runner.invoke(app, ["precompute", "--users-per-task", "0"], env=env)
    assert zero.exit_code == 2
