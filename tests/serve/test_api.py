"""The HTTP API in-process (FastAPI TestClient): auth, scopes, limits, errors, events, catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplm.app.keys import KeyStore
from shoplm.serve import create_app
from shoplm.store import Store
from tests.serve.conftest import Shop, metric_samples, sample_key


@pytest.fixture(scope="module")
def data_dir(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("api") / "data"
    shutil.copytree(shop.data_dir, target)
    return target


@pytest.fixture(scope="module")
def client(shop: Shop, data_dir: Path) -> Iterator[TestClient]:
    app = create_app(shop.settings(data_dir))
    with TestClient(app) as test_client:  # runs the lifespan: models loaded
        yield test_client


def auth(shop: Shop, scope: str = "read") -> dict[str, str]:
    return {"X-API-Key": shop.keys[scope]}


# -- auth and scopes ---------------------------------------------------------------------
def test_health_needs_no_key_and_reports_the_models(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] is True and ready.json()["model_version"]


def test_no_key_is_401_and_a_wrong_key_too(client: TestClient) -> None:
    for headers in ({}, {"X-API-Key": "slm_000000000000_nope"}, {"Authorization": "Bearer nonsense"}):
        response = client.get("/v1/recommendations", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_bearer_and_header_keys_both_work(client: TestClient, shop: Shop) -> None:
    assert client.get("/v1/recommendations", headers=auth(shop)).status_code == 200
    bearer = {"Authorization": f"Bearer {shop.keys['read']}"}
    assert client.get("/v1/recommendations", headers=bearer).status_code == 200


def test_a_read_key_cannot_post_events_but_write_and_admin_can(client: TestClient, shop: Shop) -> None:
    batch = {
        "events": [{"event_id": "scope-1", "user_id": shop.users[0], "item_id": shop.items[0], "event_type": "view"}]
    }
    refused = client.post("/v1/events", json=batch, headers=auth(shop, "read"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "write" in refused.json()["error"]["message"]
    assert client.post("/v1/events", json=batch, headers=auth(shop, "write")).status_code == 200
    assert client.post("/v1/events", json=batch, headers=auth(shop, "admin")).status_code == 200


def test_revoked_key_is_refused(client: TestClient, shop: Shop, data_dir: Path) -> None:
    keys: KeyStore = client.app.state.shoplm.keys  # type: ignore[attr-defined]
    created = keys.create("read", name="short-lived")
    assert client.get("/v1/recommendations", headers={"X-API-Key": created.secret}).status_code == 200
    assert keys.revoke(created.key.key_id)
    assert client.get("/v1/recommendations", headers={"X-API-Key": created.secret}).status_code == 401


def test_keys_are_stored_only_as_salted_hashes(shop: Shop, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'keys.sqlite'}")
    keys = KeyStore(store)
    created = [keys.create("write") for _ in range(2)]
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("keys.sqlite*"))
    for key in created:
        secret_part = key.secret.split("_", 2)[2]
        assert key.secret.encode() not in raw and secret_part.encode() not in raw
        assert key.key.key_id.encode() in raw  # the public id is what finds the row
    rows = Store.open(f"sqlite:///{tmp_path / 'keys.sqlite'}").frame("api_keys")
    assert rows["salt"].nunique() == 2  # a salt per key
    assert (rows["key_hash"].str.len() == 64).all()


# -- limits ----------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(shop: Shop, tmp_path: Path) -> None:
    shutil.copytree(shop.data_dir, tmp_path / "data")
    settings = shop.settings(tmp_path / "data", server={"rate_limit_per_second": 0.5, "rate_limit_burst": 3})
    with TestClient(create_app(settings)) as limited:
        codes = [limited.get("/v1/recommendations", headers=auth(shop)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        assert codes[3:] == [429, 429]
        limited_response = limited.get("/v1/recommendations", headers=auth(shop))
        assert limited_response.json()["error"]["code"] == "rate_limited"
        assert int(limited_response.headers["Retry-After"]) >= 1
        # Buckets are per key: another key still gets through; health checks are never limited.
        assert limited.get("/v1/recommendations", headers=auth(shop, "write")).status_code == 200
        assert limited.get("/healthz").status_code == 200


def test_body_over_the_limit_is_413(shop: Shop, tmp_path: Path) -> None:
    shutil.copytree(shop.data_dir, tmp_path / "data")
    settings = shop.settings(tmp_path / "data", server={"max_body_bytes": 2048})
    big = {"events": [{"user_id": "u", "item_id": "i" * 100, "event_type": "view"}] * 40}
    with TestClient(create_app(settings)) as small:
        response = small.post("/v1/events", json=big, headers=auth(shop, "write"))
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        # Without Content-Length (chunked), the limit holds while the body is read.
        def chunks() -> Iterator[bytes]:
            yield b'{"events": ['
            for _ in range(100):
                yield b'{"user_id": "u", "item_id": "i", "event_type": "view"},'
            yield b'{"user_id": "u", "item_id": "i", "event_type": "view"}]}'

        streamed = small.post(
            "/v1/events", content=chunks(), headers={**auth(shop, "write"), "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert small.get("/metrics").text.count('status="413"') >= 1


def test_batch_size_limit(client: TestClient, shop: Shop) -> None:
    limit = client.app.state.shoplm.settings.server.max_batch_events  # type: ignore[attr-defined]
    events = [{"user_id": "u", "item_id": "i", "event_type": "view"}] * (limit + 1)
    response = client.post("/v1/events", json={"events": events}, headers=auth(shop, "write"))
    assert response.status_code in (413, 422)
    assert "error" in response.json()


# -- malformed input ----------------------------------------------------------------------
def test_malformed_json_is_422_without_a_trace(client: TestClient, shop: Shop) -> None:
    response = client.post(
        "/v1/events",
        content=b'{"events": [{"user_id": ',
        headers={**auth(shop, "write"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "JSON" in error["message"]
    assert "Traceback" not in response.text


def test_missing_field_is_422_naming_the_field(client: TestClient, shop: Shop) -> None:
    batch = {
        "events": [{"user_id": "u1", "item_id": "i", "event_type": "view"}, {"item_id": "i", "event_type": "view"}]
    }
    response = client.post("/v1/events", json=batch, headers=auth(shop, "write"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert "events[1].user_id" in error["message"]
    assert error["fields"] == ["events[1].user_id"]


def test_bad_rows_are_rejected_with_reasons_good_rows_land(client: TestClient, shop: Shop) -> None:
    batch = {
        "events": [
            {"event_id": "mix-1", "user_id": "u1", "item_id": shop.items[1], "event_type": "view"},
            {"event_id": "mix-2", "user_id": "u1", "item_id": shop.items[1], "event_type": "teleport"},
            {"event_id": "mix-3", "user_id": "u1", "item_id": shop.items[1], "event_type": "view", "timestamp": "soon"},
        ]
    }
    body = client.post("/v1/events", json=batch, headers=auth(shop, "write")).json()
    assert (body["received"], body["accepted"], body["rejected"]) == (3, 1, 2)
    rejects = {r["id"]: r for r in body["rejects"]}
    assert rejects["mix-2"]["field"] == "event_type" and rejects["mix-2"]["index"] == 1
    assert rejects["mix-3"]["field"] == "timestamp" and "teleport" not in rejects["mix-3"]["reason"]


def test_unknown_scene_is_422_with_the_scenes(client: TestClient, shop: Shop) -> None:
    response = client.get("/v1/recommendations", params={"scene": "checkout"}, headers=auth(shop))
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "scene" in message and "item_detail" in message


def test_scene_without_its_anchor_answers_like_home(client: TestClient, shop: Shop) -> None:
    # The schema allows an item page without item_id (and a search without query): the sensible
    # default is the user's own picks, not a 422 the schema does not announce.
    params = {"user_id": shop.users[0], "k": 4}
    home = client.get("/v1/recommendations", params=params, headers=auth(shop)).json()["items"]
    for scene in ("item_detail", "search"):
        response = client.get("/v1/recommendations", params={**params, "scene": scene}, headers=auth(shop))
        assert response.status_code == 200
        assert [r["item_id"] for r in response.json()["items"]] == [r["item_id"] for r in home]


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# -- events ---------------------------------------------------------------------------------
def test_events_are_idempotent_by_event_id(client: TestClient, shop: Shop, data_dir: Path) -> None:
    batch = {
        "events": [
            {"event_id": f"idem-{i}", "user_id": shop.users[1], "item_id": shop.items[i], "event_type": "view"}
            for i in range(5)
        ]
    }
    first = client.post("/v1/events", json=batch, headers=auth(shop, "write")).json()
    again = client.post("/v1/events", json=batch, headers=auth(shop, "write")).json()
    assert (first["inserted"], first["duplicates"]) == (5, 0)
    assert (again["inserted"], again["duplicates"]) == (0, 5)
    store = Store.open(shop.settings(data_dir).database_url)
    stored = store.frame("events", ["event_id", "user_id"])
    store.close()
    assert stored["event_id"].str.startswith("idem-").sum() == 5
    assert shop.users[1] not in set(stored["user_id"])  # pseudonymized on ingest


def test_an_event_changes_the_next_recommendations(client: TestClient, shop: Shop) -> None:
    user = "brand-new-shopper"
    before = client.get("/v1/recommendations", params={"user_id": user, "k": 5}, headers=auth(shop)).json()
    assert before["cold_start"] is True
    target_category = shop.categories[shop.items[-1]]
    viewed = [i for i in shop.items if shop.categories[i] == target_category][:3]
    events = [{"user_id": user, "item_id": item, "event_type": "view"} for item in viewed * 2]
    client.post("/v1/events", json={"events": events}, headers=auth(shop, "write")).raise_for_status()
    after = client.get("/v1/recommendations", params={"user_id": user, "k": 5}, headers=auth(shop)).json()
    assert after["cold_start"] is False
    assert [r["item_id"] for r in after["items"]] != [r["item_id"] for r in before["items"]]


# -- reads -----------------------------------------------------------------------------------
def test_unknown_user_gets_a_cold_start_list(client: TestClient, shop: Shop) -> None:
    response = client.get("/v1/recommendations", params={"user_id": "never-seen-42", "k": 4}, headers=auth(shop))
    assert response.status_code == 200
    body = response.json()
    assert body["cold_start"] is True and len(body["items"]) == 4
    assert all(r["title"] and r["reason"] for r in body["items"])
    profile = client.get("/v1/users/never-seen-42/profile", headers=auth(shop))
    assert profile.status_code == 200 and profile.json()["cold_start"] is True


def test_known_user_profile_and_every_scene(client: TestClient, shop: Shop) -> None:
    user = shop.users[0]
    profile = client.get(f"/v1/users/{user}/profile", headers=auth(shop)).json()
    assert profile["events"] > 0 and profile["tags"] and profile["pseudonymous_id"] != user
    item = shop.items[3]
    for params in (
        {"scene": "home"},
        {"scene": "item_detail", "item_id": item},
        {"scene": "cart", "cart": f"{shop.items[3]},{shop.items[4]}"},
        {"scene": "post_purchase", "item_id": item},
        {"scene": "search", "query": "gift"},
    ):
        response = client.get("/v1/recommendations", params={"user_id": user, "k": 3, **params}, headers=auth(shop))
        assert response.status_code == 200, (params, response.text)
        assert len(response.json()["items"]) == 3


def test_similar_items_and_404_for_an_unknown_item(client: TestClient, shop: Shop) -> None:
    found = client.get(f"/v1/items/{shop.items[0]}/similar", params={"k": 3}, headers=auth(shop))
    assert found.status_code == 200
    assert shop.items[0] not in [r["item_id"] for r in found.json()["items"]]
    missing = client.get("/v1/items/NO-SUCH-ITEM/similar", headers=auth(shop))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "item_not_found"


def test_search(client: TestClient, shop: Shop) -> None:
    response = client.get("/v1/search", params={"q": "dress", "k": 3}, headers=auth(shop))
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    assert client.get("/v1/search", headers=auth(shop)).status_code == 422


def test_new_items_are_recommendable_at_once(client: TestClient, shop: Shop) -> None:
    item = {
        "item_id": "NEW-TENT-1",
        "title": "Ultralight Two-Person Camping Tent",
        "category": "Sports > Camping",
        "brand": "Trailhead",
        "price": 129.0,
        "stock": 5,
    }
    response = client.put("/v1/items", json={"items": [item]}, headers=auth(shop, "write"))
    assert response.status_code == 200, response.text
    assert response.json()["recommendable"] == ["NEW-TENT-1"]
    similar = client.get("/v1/items/NEW-TENT-1/similar", params={"k": 3}, headers=auth(shop))
    assert similar.status_code == 200 and len(similar.json()["items"]) == 3
    found = client.get("/v1/search", params={"q": "camping tent", "k": 5}, headers=auth(shop)).json()
    assert "NEW-TENT-1" in [r["item_id"] for r in found["items"]]
    assert client.put("/v1/items", json={"items": [item]}, headers=auth(shop, "read")).status_code == 403


def test_metrics_count_requests_by_route_and_show_the_model_version(client: TestClient, shop: Shop) -> None:
    client.get("/v1/recommendations", headers=auth(shop))
    client.get("/v1/users/someone-else/profile", headers=auth(shop))
    text = client.get("/metrics").text
    samples = metric_samples(text)
    route = {"method": "GET", "route": "/v1/recommendations", "status": "200"}
    assert samples[sample_key("shoplm_http_requests_total", **route)] >= 1
    assert sample_key("shoplm_http_request_duration_seconds_bucket", **route, le="0.01") in samples
    version = client.app.state.shoplm.live.version  # type: ignore[attr-defined]
    assert samples[sample_key("shoplm_model_version_info", version=version)] == 1
    assert 'route="/v1/users/{user_id}/profile"' in text and "someone-else" not in text  # templates, not paths


def test_openapi_documents_every_route_with_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/events",
        "/v1/items",
        "/v1/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/search",
        "/v1/users/{user_id}/profile",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    for path, methods in paths.items():
        for method, operation in methods.items():
            # The success response: 200, or 201 for a route that creates (POST /v1/experiments).
            ok = operation["responses"].get("200") or operation["responses"]["201"]
            assert "content" in ok, (path, method)
    assert not any(p.startswith("/dashboard") for p in paths)
    schemes = spec["components"]["securitySchemes"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schemes)


def test_cors_is_off_by_default_and_on_by_allow_list(client: TestClient, shop: Shop, tmp_path: Path) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in client.options("/v1/recommendations", headers=preflight).headers
    shutil.copytree(shop.data_dir, tmp_path / "data")
    settings = shop.settings(tmp_path / "data", server={"cors_origins": ["https://shop.example"]})
    with TestClient(create_app(settings)) as cors:
        answer = cors.options("/v1/recommendations", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://shop.example"
        other = cors.options("/v1/recommendations", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_api_docs_load_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text and "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
    assets = [line.split('"')[1] for line in page.text.split() if line.startswith(("href=", "src="))]
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200


def test_the_schema_is_the_contract(client: TestClient, shop: Shop) -> None:
    write = auth(shop, "write")
    # A repeated scalar parameter is ambiguous: refused (a list parameter may repeat).
    twice = client.get("/v1/recommendations?query=a&query=b", headers=auth(shop))
    assert twice.status_code == 422 and "query" in twice.json()["error"]["message"]
    assert client.get("/v1/recommendations?scene=cart&cart=x&cart=y", headers=auth(shop)).status_code == 200
    # A boolean is no number, whatever JSON's lax readers think.
    event = {"user_id": shop.users[0], "item_id": shop.items[0], "event_type": "rate"}
    refused = client.post("/v1/events", json={"events": [{**event, "value": False}]}, headers=write)
    assert refused.status_code == 422 and refused.json()["error"]["fields"] == ["events[0].value"]
    item = {"item_id": "STRICT-1", "title": "Strict", "stock": False}
    assert client.put("/v1/items", json={"items": [item]}, headers=write).status_code == 422
    assert client.put("/v1/items", json={"items": [{**item, "stock": 3.0}]}, headers=write).status_code == 200
    # An unreadable body is the documented 422, not an undocumented 400.
    broken = client.post("/v1/events", content=b"\xff\xfe{", headers={**write, "Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_request"
    # A cart scene with an empty cart answers like home, as the schema allows the request.
    empty = client.get("/v1/recommendations", params={"scene": "cart", "cart": "", "k": 3}, headers=auth(shop))
    home = client.get("/v1/recommendations", params={"k": 3}, headers=auth(shop))
    assert empty.status_code == 200 and [r["item_id"] for r in empty.json()["items"]] == [
        r["item_id"] for r in home.json()["items"]
    ]
