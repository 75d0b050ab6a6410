"""``POST /v1/insight/aspects`` and the "Review aspects" dashboard panel, on the shared trained shop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shoplm.serve import create_app
from tests.serve.conftest import Shop


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    # Read-only routes (the embedding cache of the shop's data directory aside).
    with TestClient(create_app(shop.settings(encoder={"threads": 1}))) as test_client:
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def test_aspects_of_each_text_in_order(client: TestClient, shop: Shop) -> None:
    texts = ["物流很快，但是屏幕有坏点", "", "Отличный товар, всем советую", "<b>Shipping took forever.</b>"]
    response = client.post("/v1/insight/aspects", json={"texts": texts}, headers=_read(shop))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["skipped"] for r in results] == [None, "empty", "unsupported_language", None]
    found = {(a["term"], a["category"], a["polarity"]) for a in results[0]["aspects"]}
    assert {("物流", "shipping", "positive"), ("屏幕", "screen", "negative")} <= found
    assert results[3]["text"] == "Shipping took forever."
    assert ("shipping", "negative") in {(a["category"], a["polarity"]) for a in results[3]["aspects"]}
    assert client.post("/v1/insight/aspects", json={"texts": texts}).status_code == 401  # a key is needed


@pytest.mark.parametrize(
    "body",
    [
        {"texts": []},
        {"texts": ["ok"] * 101},
        {"texts": "a review, not a list"},
        {"texts": [None]},
    ],
)
def test_bad_requests_are_422(client: TestClient, shop: Shop, body: dict) -> None:
    response = client.post("/v1/insight/aspects", json=body, headers=_read(shop))
    assert response.status_code == 422, response.text


def test_dashboard_panel_counts_mentions_per_category(client: TestClient, shop: Shop) -> None:
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    panel = client.get("/dashboard/fragments/aspects").text
    assert 'id="aspects-chart"' in panel, panel
    # The demo reviews speak of quality, shipping, price and service, in both polarities.
    for category in ("quality", "shipping", "price", "service"):
        assert f"{category}: " in panel
    assert 'data-polarity="negative"' in panel and 'data-polarity="positive"' in panel
