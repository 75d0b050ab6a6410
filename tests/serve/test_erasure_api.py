"""``DELETE /v1/users/{id}`` and ``GET /v1/users/{id}/export``: admin only, audited with the key's id, 404s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shoplm.app.keys import KeyStore
from shoplm.config import Settings
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve import create_app
from shoplm.store import Store


@dataclass
class Service:
    client: TestClient
    store: Store
    keys: dict[str, str]  # scope -> secret
    admin_id: str
    pseudonymizer: Pseudonymizer


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(
        data_dir=tmp_path / "data", pseudonymization_key="erasure-api", server={"rate_limit_per_second": 0}
    )
    store = Store.open(settings.database_url)
    p = Pseudonymizer(settings.hmac_key)
    users = [p.user("U1"), p.user("U1"), p.user("U2")]
    store.upsert(
        "events",
        pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "user_id": users,
                "item_id": ["i1", "i2", "i1"],
                "event_type": ["view"] * 3,
                "ts_ms": [1_700_000_000_000 + i for i in range(3)],
                "scene": [""] * 3,
                "query": [""] * 3,
                "session_id": [""] * 3,
                "suspected_bot": [False] * 3,
            }
        ),
    )
    keys = KeyStore(store)
    created = {scope: keys.create(scope, name=f"test {scope}") for scope in ("write", "admin")}
    with TestClient(create_app(settings, store=store)) as client:
        yield Service(client, store, {s: c.secret for s, c in created.items()}, created["admin"].key.key_id, p)
    store.close()


def test_an_admin_forgets_a_user_and_the_audit_names_the_key(service: Service) -> None:
    admin = {"X-API-Key": service.keys["admin"]}
    refused = service.client.delete("/v1/users/U1", headers={"X-API-Key": service.keys["write"]})
    assert refused.status_code == 403
    assert service.client.delete("/v1/users/U1").status_code == 401
    assert service.store.count("events") == 3  # a refused call changes nothing

    answer = service.client.delete("/v1/users/U1", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["forgotten"] is True and body["rows"] == {"events": 2}
    assert "U1" not in answer.text and service.pseudonymizer.user("U1") not in answer.text
    assert service.store.count("events") == 1
    entry = service.store.audit.entries(action="forget")[-1]
    assert entry["actor"] == service.admin_id and len(entry["subject_hash"]) == 64

    again = service.client.delete("/v1/users/U1", headers=admin)
    assert again.status_code == 404 and again.json()["error"]["code"] == "user_not_found"
    assert service.store.count("events") == 1


def test_an_unknown_user_is_404_and_nothing_changes(service: Service) -> None:
    counts = service.store.counts()
    answer = service.client.delete("/v1/users/nobody", headers={"X-API-Key": service.keys["admin"]})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "user_not_found"
    assert service.store.counts() == counts


def test_an_admin_exports_a_user(service: Service) -> None:
    admin = {"X-API-Key": service.keys["admin"]}
    answer = service.client.get("/v1/users/U1/export", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_id"] == "U1" and sorted(e["item_id"] for e in body["tables"]["events"]) == ["i1", "i2"]
    assert service.client.get("/v1/users/U1/export", headers={"X-API-Key": service.keys["write"]}).status_code == 403
    assert service.client.get("/v1/users/U404/export", headers=admin).status_code == 404
    assert service.store.audit.entries(action="export")[-1]["actor"] == service.admin_id
