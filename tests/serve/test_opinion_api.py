"""Opinion monitoring over HTTP: complaint spike alerts, daily sentiment and the dashboard panel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shoplm.app.opinion import run_opinion
from shoplm.serve import create_app
from shoplm.store import Store
from tests.serve.conftest import Shop

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def client(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    target = tmp_path_factory.mktemp("opinion") / "data"
    shutil.copytree(shop.data_dir, target)
    with TestClient(create_app(shop.settings(target))) as test_client:
        test_client.data_dir = target  # type: ignore[attr-defined]
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def add_spike_reviews(store: Store, item: str) -> None:
    """Six one-star reviews of ``item`` on the day after the store's newest review."""
    newest = int(store.frame("reviews", ["ts_ms"])["ts_ms"].max())
    day = (newest // DAY_MS + 1) * DAY_MS
    store.upsert(
        "reviews",
        pd.DataFrame(
            {
                "review_id": [f"spike-{k}" for k in range(6)],
                "item_id": item,
                "user_id": None,
                "rating": 1,
                "text": ["The battery dies after an hour.", "电池不耐用，一小时就没电了。"] * 3,
                "language": ["en", "zh"] * 3,
                "ts_ms": [day + k * 60_000 for k in range(6)],
            }
        ),
    )


def _add_spike(shop: Shop, client: TestClient) -> str:
    settings = shop.settings(client.data_dir)  # type: ignore[attr-defined]
    with Store.open(settings.database_url) as store:
        add_spike_reviews(store, shop.items[0])
        run_opinion(store, settings, topics=False)
    return shop.items[0]


def test_routes_say_which_command_fills_them_then_serve_the_spike(client: TestClient, shop: Shop) -> None:
    empty = client.get("/v1/insight/sentiment/daily", params={"level": "category"}, headers=_read(shop))
    assert empty.status_code == 404 and "shoplm insight alerts --run" in empty.json()["error"]["message"]
    assert client.get("/v1/insight/alerts", headers=_read(shop)).json() == {"total": 0, "alerts": []}
    item = _add_spike(shop, client)

    found = client.get("/v1/insight/alerts", headers=_read(shop))
    assert found.status_code == 200, found.text
    alerts = [a for a in found.json()["alerts"] if a["level"] == "item" and a["key"] == item]
    assert len(alerts) == 1 and {f"spike-{k}" for k in range(6)} <= set(alerts[0]["review_ids"])
    assert alerts[0]["negative"] >= 6 and alerts[0]["q_value"] <= 0.05
    later = client.get("/v1/insight/alerts", params={"since": "2099-01-01"}, headers=_read(shop))
    assert later.json()["total"] == 0

    daily = client.get("/v1/insight/sentiment/daily", params={"level": "item", "key": item}, headers=_read(shop))
    assert daily.status_code == 200
    body = daily.json()
    assert body["days"][-1]["negative"] >= 6 and body["alerts"][0]["start"] == body["days"][-1]["day"]
    assert "rating" in body["signal_note"] or "sentiment model" in body["signal_note"]
    shop_wide = client.get("/v1/insight/sentiment/daily", headers=_read(shop)).json()
    assert shop_wide["level"] == "shop" and sum(d["reviews"] for d in shop_wide["days"]) >= 6

    panel = client.get("/dashboard/fragments/opinion", cookies=_session(client, shop))
    assert 'id="opinion-chart"' in panel.text and "<polyline" in panel.text and 'class="alert-mark"' in panel.text


def _session(client: TestClient, shop: Shop) -> dict[str, str]:
    client.cookies.clear()
    response = client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    assert response.status_code == 303
    return dict(response.cookies)


def test_bad_input_and_missing_keys(client: TestClient, shop: Shop) -> None:
    assert client.get("/v1/insight/alerts").status_code == 401
    bad_date = client.get("/v1/insight/alerts", params={"since": "soon"}, headers=_read(shop))
    assert bad_date.status_code == 422 and "since" in bad_date.json()["error"]["fields"]
    bad_level = client.get("/v1/insight/sentiment/daily", params={"level": "planet"}, headers=_read(shop))
    assert bad_level.status_code == 422
