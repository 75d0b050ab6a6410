"""Analytics jobs on a small demo shop: results stored for serving, nothing they read changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from shoplm.app import analytics
from shoplm.app.insights import Insights
from shoplm.config import Settings
from shoplm.errors import InputError, NotFoundError
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store import Store

BASE_TABLES = ("items", "users", "events", "orders", "order_lines")


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, object]:
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("analytics")
    manifest = generate_demo_store(root / "source", seed=3, sizes=DemoSizes(n_items=80, n_users=120, n_events=4_000))
    settings = Settings(data_dir=root / "data")
    store = Store.open(settings.database_url)
    try:
        for kind in ("items", "users", "events", "orders"):
            ingest(kind, manifest.files[kind], store=store, settings=settings)
    finally:
        store.close()
    return settings, manifest


def _snapshot(store: Store) -> dict[str, object]:
    return {name: store.frame(name).sort_values(store.frame(name).columns[0]).to_json() for name in BASE_TABLES}


def test_jobs_store_results_and_change_nothing_they_read(demo_shop: tuple[Settings, object]) -> None:
    settings, _manifest = demo_shop
    store = Store.open(settings.database_url)
    try:
        before = _snapshot(store)
        churn = analytics.run_churn(store, settings)
        found = analytics.run_segments(store, settings)
        pricing = analytics.run_pricing(store, settings)
        fraud = analytics.run_fraud(store, settings)
        assert _snapshot(store) == before

        customers = {u for u in store.orders.all_lines()["user_id"].dropna() if u}
        insights = Insights(store, Pseudonymizer(settings.hmac_key))
        assert churn["scored"] == store.analytics.count_user_scores("churn") > 0
        assert churn["scored"] <= len(customers)
        assert sum(row["count"] for row in churn["histogram"]) == churn["scored"]
        top = insights.at_risk(limit=5)["users"]
        assert all(w["reasons"] for w in top)  # every warning says why
        scored = store.analytics.top_user_scores("churn", limit=1)[0]["user_id"]
        assert insights.churn(scored, pseudonymous=True)["probability"] == pytest.approx(
            store.analytics.user_score("churn", scored)["score"], abs=1e-4
        )

        segments = insights.report("segments")
        assert sum(s["customers"] for s in segments["segments"]) == segments["customers"] == churn["scored"]
        assert found["basket"]["baskets"] > 0 and "top_rules" in insights.report("basket")
        assert {row["verdict"] for row in pricing["categories"]} <= {
            "elastic",
            "inelastic",
            "undetermined",
            "confounded",
            "no_variation",
        }
        assert (settings.models_dir / "analytics" / "churn" / "model" / "meta.json").is_file()

        # Fraud: each flagged order is one alert, explained; running again adds none.
        assert fraud["new_alerts"] == fraud["flagged"] == store.alerts.count("fraud") > 0
        alert = insights.fraud_alerts(limit=1)["alerts"][0]
        assert alert["alert_id"] == f"fraud:{alert['subject']}"
        assert alert["body"]["rules"] or alert["body"]["features"]
        assert analytics.run_fraud(store, settings)["new_alerts"] == 0
    finally:
        store.close()


def test_an_unscored_user_and_an_unknown_category_are_not_found(demo_shop: tuple[Settings, object]) -> None:
    settings, _manifest = demo_shop
    store = Store.open(settings.database_url)
    try:
        insights = Insights(store, Pseudonymizer(settings.hmac_key))
        with pytest.raises(NotFoundError) as missing:
            insights.churn("nobody-at-all")
        assert missing.value.code in ("user_not_scored", "no_churn_results")
        with pytest.raises(NotFoundError):
            insights.pricing("No Such Category")
    finally:
        store.close()


def test_jobs_on_an_empty_store_say_what_is_missing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = Store.open(settings.database_url)
    try:
        for job in (analytics.run_churn, analytics.run_segments, analytics.run_pricing):
            with pytest.raises(InputError, match="no orders yet"):
                job(store, settings)
        with pytest.raises(NotFoundError, match="shoplm churn"):
            Insights(store, Pseudonymizer(settings.hmac_key)).churn("U1")
    finally:
        store.close()


def test_per_sku_and_per_user_work_runs_the_same_here_and_on_ray(demo_shop: tuple[Settings, object]) -> None:
    """Every fan-out stage here and on one local Ray (started once: it costs 10+ s)."""
    import ray

    from shoplm.app import batch, jobs

    settings, _manifest = demo_shop
    # The batch stages (shoplm encode/train/precompute --ray) need a trained shop; no time-capped model.
    trained = Settings(data_dir=settings.data_dir, recommend={"disabled_sources": ["sequential"]})
    store = Store.open(settings.database_url)
    try:
        here = analytics.run_forecast(store, settings)
        churn_here = analytics.run_churn(store, settings, users_per_task=10)
        scores_here = store.analytics.top_user_scores("churn", limit=1000)
        jobs.encode_catalog(store, trained, progress=False)
        ids_here, vectors_here = jobs.load_item_embeddings(trained)
        interactions_here = jobs.training_interactions(store)
        jobs.train_recommenders(store, trained)
        lists = batch.precompute_candidates(store, trained, users_per_task=25)
        users = store.events.frame(("user_id",), with_bots=False)["user_id"].drop_duplicates().tolist()
        lists_here = {user: store.candidates.get(user) for user in users}
        # Nothing cached: the workers encode every text (the cache would answer them all here).
        shutil.rmtree(trained.cache_dir / "embeddings")
        try:
            there = analytics.run_forecast(store, settings, ray_address="local")
            churn_there = analytics.run_churn(store, settings, users_per_task=10, ray_address="local")
            scores_there = store.analytics.top_user_scores("churn", limit=1000)
            encoded = jobs.encode_catalog(store, trained, progress=False, ray_address="local")
            ids_there, vectors_there = jobs.load_item_embeddings(trained)
            interactions_there = jobs.training_interactions(store, ray_address="local")
            lists_there_report = batch.precompute_candidates(store, trained, users_per_task=25, ray_address="local")
            lists_there = {user: store.candidates.get(user) for user in users}
        finally:
            ray.shutdown()
    finally:
        store.close()
    assert encoded.cache_hits == 0 and ids_here.tolist() == ids_there.tolist()
    np.testing.assert_allclose(vectors_there, vectors_here, atol=1e-5)
    for name in ("user_id", "item_id", "ts_ms", "weight"):
        assert np.array_equal(getattr(interactions_there, name), getattr(interactions_here, name))
    assert lists["tasks"] > 1 and (lists["ran_on"], lists_there_report["ran_on"]) == ("local", "ray")
    assert lists_there_report["users"] == lists["users"] == len(users)
    stored = [{u: (row["basis"], row["items"]) for u, row in found.items()} for found in (lists_here, lists_there)]
    assert stored[0] == stored[1] and all(len(row["items"]) == 10 for row in lists_here.values())
    assert churn_here["tasks"] > 1 and churn_there["ran_on"] == "ray"
    strip = [{k: v for k, v in row.items() if k != "computed_ms"} for row in scores_here]
    assert strip == [{k: v for k, v in row.items() if k != "computed_ms"} for row in scores_there]
    assert here["tasks"] > 1 and (here["ran_on"], there["ran_on"]) == ("local", "ray")
    assert here["series"] == there["series"] and here["reorder"] == there["reorder"]
    first = here["series"][0]["forecast"]
    assert len(first) == here["horizon"] and all(w["lo95"] <= w["mean"] <= w["hi95"] for w in first)
