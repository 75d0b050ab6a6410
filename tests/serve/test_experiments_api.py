"""``/v1/experiments`` and the recommendation route's arms: assignment, strategies, exposures, reports."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shoplm.app.experiments import Experiments, exposure_row
from shoplm.serve import create_app
from shoplm.store import Store
from tests.serve.conftest import Shop

ARMS = [
    {"name": "control", "strategy": "default", "weight": 50},
    {"name": "treatment", "strategy": "popular", "weight": 50},
]

DAY = 86_400_000
#: The same arms as the HTTP API takes them: name -> strategy and relative weight, the first is the control.
BODY_ARMS = {a["name"]: {"strategy": a["strategy"], "weight": a["weight"]} for a in ARMS}


def seed_experiment(store: Store, *, users: int = 80) -> str:
    """A running post-purchase experiment with three days of exposures and clicks (the dashboard's panel).

    Its days end before the shop's first event, so the dashboard's live feed and active users stay the shop's.
    """
    end = int(store.events.frame(("ts_ms",))["ts_ms"].min()) - DAY
    service = Experiments(store)
    made = service.create("popular after purchase", ARMS, scene="post_purchase", now_ms=end - 3 * DAY)
    experiment = service.get(made["experiment_id"])
    rows = []
    for i in range(users):
        user = f"u_experiment{i}"
        arm = experiment.assign(user)
        at = end - 3 * DAY + i * (3 * DAY // users)
        rows.append(exposure_row(experiment, arm, user, at))
        if i % (2 if arm.name == "treatment" else 4) == 0:
            rows.append(
                {
                    **exposure_row(experiment, arm, user, at),
                    "event_id": f"click-{user}",
                    "event_type": "click",
                    "scene": "post_purchase",
                    "item_id": "i1",
                    "ts_ms": at + 60_000,
                }
            )
    store.upsert("events", pd.DataFrame(rows))
    return str(made["experiment_id"])


@pytest.fixture(scope="module")
def client(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    target = tmp_path_factory.mktemp("experiments") / "data"
    shutil.copytree(shop.data_dir, target)
    # No cache of the running experiments: a test sees its create and stop at once.
    with TestClient(create_app(shop.settings(target, experiments={"cache_seconds": 0}))) as test_client:
        yield test_client


def _key(shop: Shop, scope: str) -> dict[str, str]:
    return {"X-API-Key": shop.keys[scope]}


@pytest.mark.parametrize(
    "arms",
    [
        {"control": BODY_ARMS["control"]},  # one arm
        {**BODY_ARMS, "treatment": {"strategy": "crystal-ball", "weight": 50}},  # unknown strategy
        {**BODY_ARMS, "treatment": {"strategy": "popular", "weight": -50}},  # a weight that is not positive
        {"control": BODY_ARMS["control"], "Treatment B": BODY_ARMS["treatment"]},  # a malformed arm name
    ],
)
def test_bad_experiments_are_422(client: TestClient, shop: Shop, arms: dict[str, object]) -> None:
    answer = client.post("/v1/experiments", json={"name": "bad", "arms": arms}, headers=_key(shop, "admin"))
    assert answer.status_code == 422 and answer.json()["error"]["fields"], answer.text
    blank = client.post("/v1/experiments", json={"name": " ", "arms": BODY_ARMS}, headers=_key(shop, "admin"))
    assert blank.status_code == 422


def test_an_experiment_from_creation_to_report_and_stop(client: TestClient, shop: Shop) -> None:
    # Weights are relative over HTTP: 1 and 1 split evenly.
    even = {"control": {"strategy": "default", "weight": 1}, "treatment": {"strategy": "popular", "weight": 1}}
    body = {"name": "popular on item pages", "arms": even, "scene": "item_detail", "metric": "ctr"}
    assert client.post("/v1/experiments", json=body, headers=_key(shop, "read")).status_code == 403
    made = client.post("/v1/experiments", json=body, headers=_key(shop, "admin"))
    assert made.status_code == 201, made.text
    experiment_id = made.json()["experiment_id"]
    assert [(a["name"], a["weight"]) for a in made.json()["arms"]] == [("control", 0.5), ("treatment", 0.5)]
    assert client.post("/v1/experiments", json=body, headers=_key(shop, "admin")).status_code == 409  # one per scene

    empty = client.get(f"/v1/experiments/{experiment_id}", headers=_key(shop, "read")).json()
    assert not empty["enough_data"] and empty["summary"].startswith("not enough data")
    assert client.get("/v1/experiments/unknown", headers=_key(shop, "read")).status_code == 404

    arms: dict[str, str] = {}
    for user in shop.users[:30]:
        params = {"user_id": user, "scene": "item_detail", "item_id": shop.items[0], "k": 5}
        first = client.get("/v1/recommendations", params=params, headers=_key(shop, "read")).json()
        again = client.get("/v1/recommendations", params=params, headers=_key(shop, "read")).json()
        assert first["experiment"] == experiment_id and first["arm"] == again["arm"]  # the same arm every time
        arms[user] = first["arm"]
        sources = {name for item in first["items"] for name in item["sources"]}
        if first["arm"] == "treatment":
            assert sources <= {"popularity"}, sources  # popularity alone
        else:
            assert len(sources) > 1  # the live blend
    assert set(arms.values()) == {"control", "treatment"}
    # Another scene is not in the experiment.
    home = client.get("/v1/recommendations", params={"user_id": shop.users[0]}, headers=_key(shop, "read")).json()
    assert home.get("experiment") is None

    # Exposures are committed by the event writer; then the users click.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        report = client.get(f"/v1/experiments/{experiment_id}", headers=_key(shop, "read")).json()
        if sum(a["exposed"] for a in report["arms"]) == len(arms):
            break
        time.sleep(0.1)
    assert sum(a["exposed"] for a in report["arms"]) == len(arms)
    clickers = [u for u, arm in arms.items() if arm == "treatment"]
    events = [{"user_id": u, "item_id": shop.items[1], "event_type": "click"} for u in clickers]
    assert client.post("/v1/events", json={"events": events}, headers=_key(shop, "write")).status_code == 200
    report = client.get(f"/v1/experiments/{experiment_id}", headers=_key(shop, "read")).json()
    treatment = next(a for a in report["arms"] if a["name"] == "treatment")
    assert treatment["clickers"] == len(clickers) and treatment["ctr"]["value"] == 1.0
    assert treatment["ctr"]["low"] < 1.0 and report["days"]
    listed = client.get("/v1/experiments", headers=_key(shop, "read")).json()["experiments"]
    assert experiment_id in [e["experiment_id"] for e in listed]
    # The dashboard's panel: one line per arm over the days, and the arms' table.
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    panel = client.get("/dashboard/fragments/experiments").text
    assert panel.count("<polyline") == 2 and "popular on item pages" in panel and 'id="experiments-table"' in panel

    stop = f"/v1/experiments/{experiment_id}/stop"
    assert client.post(stop, headers=_key(shop, "write")).status_code == 403
    assert client.post(stop, headers=_key(shop, "admin")).json()["status"] == "stopped"
    second = client.post(stop, headers=_key(shop, "admin"))
    assert second.status_code == 409 and second.json()["error"]["code"] == "experiment_stopped"
    params = {"user_id": shop.users[0], "scene": "item_detail", "item_id": shop.items[0]}
    assert client.get("/v1/recommendations", params=params, headers=_key(shop, "read")).json().get("experiment") is None
