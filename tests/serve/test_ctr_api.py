"""``POST /v1/ctr/score`` and ``shoplm ctr``: 404 naming the command before training, scores after it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shoplm.serve import create_app
from tests.serve.conftest import PSEUDONYMIZATION_KEY, Shop


@pytest.fixture(scope="module")
def data_dir(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Training writes a model version: a copy of the shared shop, once for this module.
    target = tmp_path_factory.mktemp("ctr-shop") / "data"
    shutil.copytree(shop.data_dir, target)
    return target


@pytest.fixture(scope="module")
def client(shop: Shop, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(shop.settings(data_dir))) as test_client:
        yield test_client


def _cli(data_dir: Path, *args: str) -> object:
    from shoplm.cli.main import app

    env = {"SHOPLM_PSEUDONYMIZATION_KEY": PSEUDONYMIZATION_KEY}
    return CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env=env, catch_exceptions=False)


def test_scores_after_training_and_404_naming_the_command_before(
    client: TestClient, shop: Shop, data_dir: Path
) -> None:
    read = {"X-API-Key": shop.keys["read"]}
    body = {"user_id": shop.users[0], "item_ids": shop.items[:5], "scene": "search"}
    before = client.post("/v1/ctr/score", json=body, headers=read)
    assert before.status_code == 404 and "shoplm ctr train" in before.json()["error"]["message"]
    untrained = _cli(data_dir, "ctr", "score", shop.users[0], shop.items[0])
    assert untrained.exit_code == 2 and "shoplm ctr train" in untrained.output

    trained = _cli(data_dir, "ctr", "train", "--model", "logistic")
    assert trained.exit_code == 0, trained.output
    assert "trained on" in trained.output

    answer = client.post("/v1/ctr/score", json=body, headers=read)
    assert answer.status_code == 200, answer.text
    scores = answer.json()["scores"]
    assert [s["item_id"] for s in scores] == shop.items[:5]
    assert all(0 < s["p_click"] < 1 for s in scores)
    # One slot for all vs. slots in order: the later slots score lower.
    same = client.post("/v1/ctr/score", json={**body, "position": 0}, headers=read).json()["scores"]
    assert sum(s["p_click"] for s in same) > sum(s["p_click"] for s in scores)
    printed = _cli(data_dir, "ctr", "score", shop.users[0], *shop.items[:2], "--scene", "home")
    assert printed.exit_code == 0 and shop.items[1] in printed.output


def test_bad_requests_are_clear(client: TestClient, shop: Shop, data_dir: Path) -> None:
    read = {"X-API-Key": shop.keys["read"]}
    body = {"user_id": shop.users[0], "item_ids": shop.items[:2]}
    assert client.post("/v1/ctr/score", json=body).status_code == 401
    assert client.post("/v1/ctr/score", json={**body, "item_ids": []}, headers=read).status_code == 422
    assert client.post("/v1/ctr/score", json={**body, "scene": "cart"}, headers=read).status_code == 422
    wrong = _cli(data_dir, "ctr", "score", shop.users[0], shop.items[0], "--scene", "checkout")
    assert wrong.exit_code == 2 and "unknown scene" in wrong.output
    bad_model = _cli(data_dir, "ctr", "train", "--model", "forest")
    assert bad_model.exit_code == 2 and "unknown CTR model" in bad_model.output
