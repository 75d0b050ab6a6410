"""The review-sentiment routes: score texts (bad input included), an item's stored summary, the dashboard panel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shoplm.serve import create_app
from shoplm.store import Store
from tests.serve.conftest import Shop


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    # Read-only routes: the shared data directory is not written.
    with TestClient(create_app(shop.settings())) as test_client:
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def test_texts_are_scored_and_bad_input_gets_defined_results(client: TestClient, shop: Shop) -> None:
    texts = ["质量很好，物流也快，非常满意", "Terrible, it broke after one day.", "   ", "Das ist sehr gut"]
    texts.append("<b>Love it</b> 😍")
    answer = client.post("/v1/insight/sentiment", json={"texts": texts}, headers=_read(shop))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"].startswith("sentiment-")
    results = body["results"]
    assert [r["polarity"] for r in results] == ["positive", "negative", None, None, "positive"]
    assert [r["skipped"] for r in results] == [None, None, "empty", "unsupported_language", None]
    assert results[4]["html_stripped"] and 1 <= results[0]["rating"] <= 5
    # The model is loaded once per process: a second request is answered by the same object.
    from shoplm.app.reviews import sentiment_model

    assert sentiment_model(shop.settings()) is sentiment_model(shop.settings())
    assert client.post("/v1/insight/sentiment", json={"texts": []}, headers=_read(shop)).status_code == 422
    assert client.post("/v1/insight/sentiment", json={"texts": ["x"] * 101}, headers=_read(shop)).status_code == 422
    assert client.post("/v1/insight/sentiment", json={"texts": ["good"]}).status_code == 401


def test_an_items_stored_sentiment_summary(client: TestClient, shop: Shop) -> None:
    with Store.open(shop.settings().database_url) as store:
        scored = store.review_sentiment.frame()
    assert not scored.empty  # the shop's reviews were scored when the fixture ingested them
    item_id = scored["item_id"].value_counts().index[0]
    body = client.get(f"/v1/insight/sentiment/items/{item_id}", headers=_read(shop)).json()
    mine = scored[scored["item_id"] == item_id]
    assert body["scored"] == len(mine) and sum(body["counts"].values()) == len(mine)
    assert body["counts"]["positive"] == int((mine["polarity"] == "positive").sum())
    assert body["mean_rating_estimate"] == pytest.approx(mine["rating_estimate"].mean(), abs=1e-3)
    unknown = client.get("/v1/insight/sentiment/items/no-such-item", headers=_read(shop))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_the_dashboard_panel_draws_polarity_bars(client: TestClient, shop: Shop) -> None:
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    html = client.get("/dashboard/fragments/sentiment").text
    assert 'id="sentiment-chart"' in html and 'data-polarity="positive"' in html
