"""Ad copy over HTTP, the command line and the dashboard: variants with their checks, creative posteriors, errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shoplm.app.ctr import train_ctr
from shoplm.cli.main import app as cli
from shoplm.serve import create_app
from shoplm.store import Store
from tests.serve.conftest import Shop

runner = CliRunner()


@pytest.fixture(scope="module")
def ads_data(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shop (its impression log has uniformly random creatives) with a CTR model trained."""
    target = tmp_path_factory.mktemp("ads") / "data"
    shutil.copytree(shop.data_dir, target)
    settings = shop.settings(target)
    with Store.open(settings.database_url) as store:
        assert store.impressions.count() > 0
        train_ctr(store, settings, model="logistic", text=False)  # the scorer that ranks the variants
    return target


@pytest.fixture(scope="module")
def client(shop: Shop, ads_data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(shop.settings(ads_data))) as test_client:
        yield test_client


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def test_write_answers_checked_ranked_variants(client: TestClient, shop: Shop) -> None:
    item = shop.items[0]
    body = {"item_id": item, "channel": "search", "n": 4, "must_mention": ["brand", "price"], "templates_only": True}
    answer = client.post("/v1/ads/write", json=body, headers=_read(shop))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["ok"] and found["item_id"] == item and len(found["variants"]) == 4
    scores = [v["score"] for v in found["variants"]]  # the CTR model's, best first
    assert {v["score_source"] for v in found["variants"]} == {"ctr"} and all(0 < x < 1 for x in scores)
    assert scores == sorted(scores, reverse=True)
    assert len({v["text"] for v in found["variants"]}) == 4
    for variant in found["variants"]:
        assert variant["length"] == len(variant["text"]) and set(variant["checks"]) >= {"length", "claims"}
    # An impossible ask is answered, with what cannot be met, not hidden.
    tight = client.post(
        "/v1/ads/write",
        json={
            **body,
            "channel": "push",
            "must_mention": ["brand", "price", "title", "color", "material", "size", "category"],
        },
        headers=_read(shop),
    ).json()
    if tight["ok"] is False:
        assert tight["unmet"] or all(v["violations"] for v in tight["variants"])
    assert client.post("/v1/ads/write", json=body).status_code == 401


def test_write_errors(client: TestClient, shop: Shop) -> None:
    missing = client.post("/v1/ads/write", json={"item_id": "NOPE", "channel": "feed"}, headers=_read(shop))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "item_not_found"
    channel = client.post("/v1/ads/write", json={"item_id": shop.items[0], "channel": "tv"}, headers=_read(shop))
    assert channel.status_code == 422 and "search" in channel.text
    too_many = client.post(
        "/v1/ads/write", json={"item_id": shop.items[0], "channel": "feed", "n": 11}, headers=_read(shop)
    )
    assert too_many.status_code == 422


def test_bandit_posteriors_from_the_stored_impressions(client: TestClient, shop: Shop, ads_data: Path) -> None:
    with Store.open(shop.settings(ads_data).database_url) as store:
        shown = store.impressions.frame()
    top = str(shown["item_id"].value_counts().index[0])
    mine = shown[shown["item_id"] == top]
    found = client.get(f"/v1/ads/{top}/bandit", headers=_read(shop)).json()
    assert found["impressions"] == len(mine) and found["source"] == "impressions"
    assert sum(a["clicks"] for a in found["arms"]) == int(mine["clicked"].sum())
    assert {a["arm"] for a in found["arms"]} == {str(c) for c in mine["creative"].unique()}
    for arm in found["arms"]:
        assert 0 <= arm["low"] <= arm["mean"] <= arm["high"] <= 1
    assert found["best_arm"] == max(found["arms"], key=lambda a: a["p_best"])["arm"]
    assert client.get("/v1/ads/NOPE/bandit", headers=_read(shop)).status_code == 404


def test_dashboard_panel_draws_the_posteriors_and_the_variants(client: TestClient, shop: Shop) -> None:
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    panel = client.get("/dashboard/fragments/ads").text
    assert 'id="ads-chart"' in panel and "<rect" in panel and "<line" in panel
    assert 'id="ads-variants"' in panel and "all pass" in panel


def test_cli_write_and_bandit(shop: Shop, ads_data: Path) -> None:
    env = {"SHOPLM_PSEUDONYMIZATION_KEY": "serve-tests"}
    item = shop.items[1]
    ok = runner.invoke(
        cli,
        ["ads", "write", item, "--channel", "feed", "--n", "3", "--templates", "--json", "--data-dir", str(ads_data)],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    assert '"ok": true' in ok.output
    unknown = runner.invoke(cli, ["ads", "write", "NOPE", "--data-dir", str(ads_data)], env=env)
    assert unknown.exit_code == 2 and "no item 'NOPE'" in unknown.output
    channel = runner.invoke(cli, ["ads", "write", item, "--channel", "tv", "--data-dir", str(ads_data)], env=env)
    assert channel.exit_code == 2 and "search, feed, push" in channel.output
    attribute = runner.invoke(
        cli, ["ads", "write", item, "--must-mention", "weight", "--data-dir", str(ads_data)], env=env
    )
    assert attribute.exit_code == 2 and "unknown attribute 'weight'" in attribute.output
    impossible = runner.invoke(
        cli,
        ["ads", "write", item, "--ban", item_word(shop, ads_data, item), "--templates", "--data-dir", str(ads_data)],
        env=env,
    )
    assert impossible.exit_code == 2 and "no variant meets every constraint" in impossible.output
    posteriors = runner.invoke(cli, ["ads", "bandit", item, "--data-dir", str(ads_data)], env=env)
    assert posteriors.exit_code == 0 and ("P(best)" in posteriors.output or "no impressions" in posteriors.output)


def item_word(shop: Shop, data_dir: Path, item: str) -> str:
    """A word of the item's product name: banning it cannot be met by any ad of the item."""
    from shoplm.app.adcopy import ad_item

    with Store.open(shop.settings(data_dir).database_url) as store:
        return ad_item(store, item).product_name.split()[0]
