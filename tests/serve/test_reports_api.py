"""``GET /v1/reports/{name}``: admin keys only, noise with its terms, 409 once the budget is spent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplm.app.keys import KeyStore
from shoplm.serve import create_app
from shoplm.store import Store
from tests.privacy.shop import WINDOW, dp_settings, dp_shop_copy

PARAMS = {"start": WINDOW[0], "end": WINDOW[1]}


@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data_dir = dp_shop_copy(tmp_path_factory, tmp_path)
    settings = dp_settings(data_dir, budget=2.0).model_copy(
        update={"server": dp_settings(data_dir).server.model_copy(update={"rate_limit_per_second": 0})}
    )
    store = Store.open(settings.database_url)
    keys = KeyStore(store)
    secrets = {scope: keys.create(scope, name=f"dp {scope}").secret for scope in ("read", "write", "admin")}
    # No lifespan (no `with`): these routes need the store, not the recommender or the assistant.
    client = TestClient(create_app(settings, store=store))
    try:
        yield client, secrets
    finally:
        client.close()
        store.close()


def _as(secrets: dict[str, str], scope: str) -> dict[str, str]:
    return {"X-API-Key": secrets[scope]}


def test_only_admin_keys_get_reports(api: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = api
    query = {**PARAMS, "epsilon": 0.5}
    assert client.get("/v1/reports/daily-sales", params=query).status_code == 401
    for scope in ("read", "write"):
        denied = client.get("/v1/reports/daily-sales", params=query, headers=_as(secrets, scope))
        assert denied.status_code == 403
        assert client.get("/v1/privacy/budget", headers=_as(secrets, scope)).status_code == 403
    budget = client.get("/v1/privacy/budget", headers=_as(secrets, "admin")).json()
    assert budget["spent"] == 0.0 and budget["releases"] == []  # nothing was released to the refused keys


def test_a_release_states_its_terms_and_is_recorded_with_the_key(api: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = api
    answer = client.get("/v1/reports/daily-ratings", params={**PARAMS, "epsilon": 1.0}, headers=_as(secrets, "admin"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["epsilon"] == 1.0 and body["delta"] == 0.0 and body["bounds"]["clamp"] == [1, 5]
    assert set(body["cells"][0]) == {"category", "day", "count", "mean"}
    assert body["budget"] == {"epsilon_budget": 2.0, "spent": 1.0, "remaining": 1.0}
    listed = client.get("/v1/reports", headers=_as(secrets, "admin")).json()["reports"]
    assert [r["name"] for r in listed] == ["daily-sales", "daily-revenue", "daily-views", "daily-ratings"]
    [entry] = client.get("/v1/privacy/budget", headers=_as(secrets, "admin")).json()["releases"]
    admin_key_id = secrets["admin"].split("_")[1]
    assert entry["report"] == "daily-ratings" and entry["key_id"] == admin_key_id


def test_a_spent_budget_answers_409_and_a_repeat_the_same_release(api: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = api
    admin = _as(secrets, "admin")
    first = client.get("/v1/reports/daily-views", params={**PARAMS, "epsilon": 2.0}, headers=admin)
    assert first.status_code == 200
    refused = client.get("/v1/reports/daily-sales", params={**PARAMS, "epsilon": 0.1}, headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "privacy_budget_exhausted"
    assert "would be exceeded" in refused.json()["error"]["message"]
    again = client.get("/v1/reports/daily-views", params={**PARAMS, "epsilon": 2.0}, headers=admin)
    assert again.status_code == 200 and again.json()["cells"] == first.json()["cells"] and again.json()["repeated"]


@pytest.mark.parametrize(
    ("path", "epsilon", "status", "code"),
    [
        ("/v1/reports/daily-sales", "0", 422, "invalid_request"),
        ("/v1/reports/daily-sales", "-1", 422, "invalid_request"),
        ("/v1/reports/daily-sales", "nan", 422, "invalid_request"),
        ("/v1/reports/daily-sales", "inf", 422, "invalid_request"),
        ("/v1/reports/daily-sales", "lots", 422, "invalid_request"),
        ("/v1/reports/weekly-gossip", "1", 404, "unknown_report"),
    ],
)
def test_bad_requests_are_refused_clearly(
    api: tuple[TestClient, dict[str, str]], path: str, epsilon: str, status: int, code: str
) -> None:
    client, secrets = api
    answer = client.get(path, params={**PARAMS, "epsilon": epsilon}, headers=_as(secrets, "admin"))
    assert answer.status_code == status and answer.json()["error"]["code"] == code
    assert client.get("/v1/privacy/budget", headers=_as(secrets, "admin")).json()["spent"] == 0.0
