"""Analytics jobs on a small demo shop: results stored for serving, nothing they read changed."""

from __future__ import annotations

from pathlib import Path

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
    import ray

    settings, _manifest = demo_shop
    store = Store.open(settings.database_url)
    try:
        here = analytics.run_forecast(store, settings)
        churn_here = analytics.run_churn(store, settings, users_per_task=10)
        scores_here = store.analytics.top_user_scores("churn", limit=1000)
        try:
            there = analytics.run_forecast(store, settings, ray_address="local")
            churn_there = analytics.run_churn(store, settings, users_per_task=10, ray_address="local")
            scores_there = store.analytics.top_user_scores("churn", limit=1000)
        finally:
            ray.shutdown()
    finally:
        store.close()
    assert churn_here["tasks"] > 1 and churn_there["ran_on"] == "ray"
    strip = [{k: v for k, v in row.items() if k != "computed_ms"} for row in scores_here]
    assert strip == [{k: v for k, v in row.items() if k != "computed_ms"} for row in scores_there]
    assert here["tasks"] > 1 and (here["ran_on"], there["ran_on"]) == ("local", "ray")
    assert here["series"] == there["series"] and here["reorder"] == there["reorder"]
    first = here["series"][0]["forecast"]
    assert len(first) == here["horizon"] and all(w["lo95"] <= w["mean"] <= w["hi95"] for w in first)
