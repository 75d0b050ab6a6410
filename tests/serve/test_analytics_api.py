"""The analytics routes: churn warnings, at-risk list, segments, basket rules and pricing, from the jobs' results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shoplm.serve import create_app
from tests.serve.conftest import Shop


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    # Read-only routes: the shared data directory is not written.
    with TestClient(create_app(shop.settings())) as test_client:
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def test_churn_of_a_customer_by_the_shops_own_id(client: TestClient, shop: Shop) -> None:
    buyer = next(user for user, orders in shop.orders.items() if any(s != "cancelled" for _o, s in orders))
    found = client.get(f"/v1/users/{buyer}/churn", headers=_read(shop))
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["user_id"] == buyer and body["pseudonymous_id"] != buyer  # the store keeps no raw id
    assert 0 <= body["probability"] <= 1 and body["at_risk"] == (body["probability"] >= 0.5)
    assert client.get(f"/v1/users/{buyer}/churn").status_code == 401  # a key is needed


def test_a_user_without_purchases_is_not_scored(client: TestClient, shop: Shop) -> None:
    missing = client.get("/v1/users/never-bought-anything/churn", headers=_read(shop))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_scored"


def test_the_at_risk_list_is_ordered_and_explained(client: TestClient, shop: Shop) -> None:
    body = client.get("/v1/customers/at-risk", params={"limit": 5}, headers=_read(shop)).json()
    probabilities = [w["probability"] for w in body["users"]]
    assert probabilities == sorted(probabilities, reverse=True) and all(p >= body["threshold"] for p in probabilities)
    assert body["warned"] >= len(body["users"]) and body["scored"] >= body["warned"]
    assert client.get("/v1/customers/at-risk", params={"limit": 0}, headers=_read(shop)).status_code == 422


def test_segments_and_basket_rules(client: TestClient, shop: Shop) -> None:
    segments = client.get("/v1/segments", headers=_read(shop)).json()
    assert segments["method"] == "rfm" and sum(s["customers"] for s in segments["segments"]) == segments["customers"]
    rules = client.get("/v1/segments/basket-rules", headers=_read(shop))
    assert rules.status_code == 200 and rules.json()["baskets"] > 0


def test_pricing_answers_or_says_it_cannot_tell(client: TestClient, shop: Shop) -> None:
    categories = sorted(set(shop.categories.values()))
    answers = [client.get(f"/v1/pricing/{c}", params={"change": -0.1}, headers=_read(shop)) for c in categories]
    known = [a.json() for a in answers if a.status_code == 200]
    assert known, [a.text for a in answers]
    for answer in known:
        assert answer["price_change"] == -0.1
        assert ("units" in answer and answer["units"] is not None) or answer["note"]
    unknown = client.get("/v1/pricing/not-a-category", headers=_read(shop))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_category"
    assert client.get(f"/v1/pricing/{categories[0]}", params={"change": -1}, headers=_read(shop)).status_code == 422


def test_fraud_alerts_say_why(client: TestClient, shop: Shop) -> None:
    body = client.get("/v1/risk/alerts", params={"limit": 3}, headers=_read(shop)).json()
    assert body["total"] >= len(body["alerts"]) > 0
    first = body["alerts"][0]
    assert first["kind"] == "fraud" and first["subject"] in first["title"]
    assert first["body"]["rules"] or first["body"]["features"]
    assert first["delivered_at"] is None  # no webhook configured: stored only


def test_forecasts_and_what_to_order(client: TestClient, shop: Shop) -> None:
    from shoplm.store import Store

    store = Store.open(shop.settings().database_url)
    try:
        forecast_items = [s["item_id"] for s in store.analytics.report("forecast")["body"]["series"]]
    finally:
        store.close()
    assert forecast_items
    found = client.get(f"/v1/forecasts/{forecast_items[0]}", headers=_read(shop))
    assert found.status_code == 200, found.text
    forecast = found.json()
    assert len(forecast["forecast"]) == forecast["horizon"] and forecast["history"]
    assert all(w["lo95"] <= w["lo80"] <= w["mean"] <= w["hi80"] <= w["hi95"] for w in forecast["forecast"])
    reorder = client.get("/v1/reorder", headers=_read(shop)).json()
    assert reorder["policy"]["lead_time_weeks"] == 2  # the documented default
    assert all(a["order_quantity"] > 0 and a["reason"] for a in reorder["items"])
    missing = client.get("/v1/forecasts/NO-SUCH-ITEM", headers=_read(shop))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "item_not_forecast"
