"""``POST /v1/reviews/{review_id}/reply``: drafts with the template and with an OpenAI-compatible stub endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shoplm.app.review_replies import ReviewReplies
from shoplm.lm.generator import FallbackGenerator, OpenAIChatGenerator
from shoplm.serve import create_app
from shoplm.store import Store
from tests.insight.chat_stub import chat_stub
from tests.serve.conftest import Shop


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    # Drafting writes nothing: the shared data directory is not written.
    with TestClient(create_app(shop.settings())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def negative(shop: Shop) -> dict:
    with Store.open(shop.settings().database_url) as store:
        found = store.reviews.newest(limit=1, max_rating=2)
    assert found, "the serve shop has no negative review"
    return found[0]


def _read(shop: Shop) -> dict[str, str]:
    return {"X-API-Key": shop.keys["read"]}


def test_a_read_key_drafts_a_checked_reply(client: TestClient, shop: Shop, negative: dict) -> None:
    url = f"/v1/reviews/{negative['review_id']}/reply"
    answer = client.post(url, headers=_read(shop))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["review_id"], body["backend"], body["outcome"], body["faithful"]) == (
        negative["review_id"],
        "template",
        "faithful",
        True,
    )
    assert body["tone"] == "negative" and body["draft"] and body["unsupported"] == []
    assert {"tone", "review_text", "product", "policy"} <= {g["key"] for g in body["grounding"]}
    assert client.post(url).status_code == 401


def test_unknown_reviews_and_bad_backends(client: TestClient, shop: Shop, negative: dict) -> None:
    missing = client.post("/v1/reviews/R-none/reply", headers=_read(shop))
    assert missing.status_code == 404 and "no review 'R-none'" in missing.json()["error"]["message"]
    url = f"/v1/reviews/{negative['review_id']}/reply"
    assert client.post(url, params={"backend": "gpt"}, headers=_read(shop)).status_code == 422
    no_model = client.post(url, params={"backend": "llm"}, headers=_read(shop))
    assert no_model.status_code == 409 and "no language model is configured" in no_model.text


def test_an_unfaithful_endpoint_draft_comes_back_replaced(client: TestClient, shop: Shop, negative: dict) -> None:
    state = client.app.state.shoplm
    configured = getattr(client.app.state, "review_replies", None)
    with chat_stub() as stub, OpenAIChatGenerator(stub.url, model="stub", timeout=5) as llm:
        stub.reply = (
            "抱歉！我们将在2026-05-20前赔偿您88元。"
            if negative["language"] == "zh"
            else ("Sorry! We will pay you ¥88 compensation by 2026-05-20.")
        )
        client.app.state.review_replies = ReviewReplies(state.store, state.settings, generator=FallbackGenerator(llm))
        try:
            body = client.post(f"/v1/reviews/{negative['review_id']}/reply", headers=_read(shop)).json()
        finally:
            client.app.state.review_replies = configured
    assert body["outcome"] == "replaced" and body["faithful"] is False and body["backend"] == "template"
    assert "2026-05-20" in body["unsupported"] and body["rejected_draft"] == stub.reply
    assert len(stub.requests) == 1


def test_the_dashboard_panel_shows_negative_reviews_with_checked_drafts(client: TestClient, shop: Shop) -> None:
    client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    try:
        panel = client.get("/dashboard/fragments/replies")
    finally:
        client.cookies.clear()  # the other tests send API keys, not the session
    assert panel.status_code == 200, panel.text
    html = panel.text
    assert 'id="replies-chart"' in html and "template · faithful" in html
    assert html.count("<tr data-review=") >= 1 and 'class="badge badge-ok"' in html
