"""The assistant over HTTP: grounded replies, confirmation, scopes, validation, conversations and their owners."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve import create_app
from shoplm.store.schema import orders as orders_table
from tests.serve.conftest import Shop

MESSAGES = "/v1/assistant/messages"


@pytest.fixture(scope="module")
def client(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # One app for the module: its assistant loads once, on the first message, as in a real service.
    target = tmp_path_factory.mktemp("assistant") / "data"
    shutil.copytree(shop.data_dir, target)
    with TestClient(create_app(shop.settings(target))) as test_client:
        yield test_client


def _headers(shop: Shop, scope: str) -> dict[str, str]:
    return {"X-API-Key": shop.keys[scope]}


def _user_with(shop: Shop, status: str, *, last: bool = False) -> tuple[str, str]:
    """A user of the shop and one of their orders in ``status`` (the demo shop is deterministic).

    ``last``: the last such order instead of the first, for a test that changes it.
    """
    found = [(user, order_id) for user, orders in shop.orders.items() for order_id, s in orders if s == status]
    assert len(found) >= 2, f"the test shop has too few {status} orders of its top users"
    return found[-1] if last else found[0]


def _say(client: TestClient, shop: Shop, text: str, **fields: object) -> dict[str, object]:
    response = client.post(MESSAGES, json={"text": text, **fields}, headers=_headers(shop, "write"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_tracking_an_order_is_answered_from_the_users_own_order(client: TestClient, shop: Shop) -> None:
    user, order_id = _user_with(shop, "delivered")
    turn = _say(client, shop, f"Where is my order {order_id}?", user_id=user)
    assert turn["intent"] == "track_order" and turn["language"] == "en" and not turn["escalated"]
    assert {"tool": "track", "outcome": "looked_up", "order_id": order_id} in turn["actions"]
    facts = {f["key"]: f["value"] for f in turn["facts"]}
    assert facts["status"] == "delivered" and order_id in turn["text"]
    # Grounded on that order only: its row and its lines.
    assert {f["source"] for f in turn["facts"]} == {f"orders:{order_id}", f"order_lines:{order_id}"}
    assert str(turn["conversation_id"]).startswith("conv-") and turn["status"] == "open"
    assert 0.0 <= float(turn["confidence"]) <= 1.0 and float(turn["seconds"]) > 0
    sentiment = turn["sentiment"]
    assert sentiment["label"] != "negative" and 0.0 <= sentiment["negative"] < 0.5  # a calm question


def test_a_refund_is_only_made_after_the_customer_confirms(client: TestClient, shop: Shop) -> None:
    user, order_id = _user_with(shop, "delivered", last=True)  # the other tests read the first one
    conversation = "refund-flow-1"
    proposed = _say(client, shop, f"I want a refund for order {order_id}", user_id=user, conversation_id=conversation)
    assert proposed["conversation_id"] == conversation
    assert {"tool": "refund", "outcome": "proposed", "order_id": order_id} in proposed["actions"]
    store = client.app.state.shoplm.store  # type: ignore[attr-defined]

    def status() -> str:
        with store.engine.connect() as conn:
            return str(conn.execute(select(orders_table.c.status).where(orders_table.c.order_id == order_id)).scalar())

    assert status() == "delivered"  # proposing changes nothing
    done = _say(client, shop, "yes", user_id=user, conversation_id=conversation)
    assert {"tool": "refund", "outcome": "done", "order_id": order_id} in done["actions"]
    assert status() == "refunded"


def test_a_shipped_order_cannot_be_cancelled(client: TestClient, shop: Shop) -> None:
    user, order_id = _user_with(shop, "shipped")
    turn = _say(client, shop, f"please cancel order {order_id}", user_id=user)
    assert {"tool": "cancel", "outcome": "not_allowed", "order_id": order_id} in turn["actions"]


def test_another_users_order_is_not_found_for_them(client: TestClient, shop: Shop) -> None:
    owner, order_id = _user_with(shop, "delivered")
    other = next(u for u in shop.users if u != owner and all(o != order_id for o, _ in shop.orders.get(u, [])))
    turn = _say(client, shop, f"where is order {order_id}?", user_id=other)
    assert {"tool": "track", "outcome": "unknown_order", "order_id": order_id} in turn["actions"]
    assert "delivered" not in turn["text"]


def test_a_conversation_is_stored_masked_and_read_back(client: TestClient, shop: Shop) -> None:
    user = shop.users[0]
    first = _say(client, shop, "Hello, my email is ann@example.com", user_id=user)
    conversation = str(first["conversation_id"])
    _say(client, shop, "What is your return policy?", user_id=user, conversation_id=conversation)
    response = client.get(f"/v1/assistant/conversations/{conversation}", headers=_headers(shop, "read"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "open" and body["channel"] == "assistant" and body["pending"] is None
    assert body["user_id"] == Pseudonymizer(shop.settings().hmac_key).user(user)
    assert [m["role"] for m in body["messages"]] == ["customer", "assistant", "customer", "assistant"]
    assert body["messages"][0]["text"] == "Hello, my email is [email]"  # PII masked in the store
    assert body["messages"][3]["intent"] == "check_refund_policy"
    # Asked for on behalf of a user, only that user's conversation is answered.
    mine = client.get(
        f"/v1/assistant/conversations/{conversation}", params={"user_id": user}, headers=_headers(shop, "read")
    )
    theirs = client.get(
        f"/v1/assistant/conversations/{conversation}", params={"user_id": shop.users[1]}, headers=_headers(shop, "read")
    )
    assert mine.status_code == 200 and theirs.status_code == 404


def test_an_unknown_conversation_is_a_json_404(client: TestClient, shop: Shop) -> None:
    response = client.get("/v1/assistant/conversations/no-such-conversation", headers=_headers(shop, "read"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_another_users_conversation_is_refused_and_left_untouched(client: TestClient, shop: Shop) -> None:
    owner, order_id = _user_with(shop, "delivered")
    conversation = str(_say(client, shop, f"where is my order {order_id}?", user_id=owner)["conversation_id"])
    intruder = next(u for u in shop.users if u != owner)
    for user_id in (intruder, None):  # another user, or a guest
        response = client.post(
            MESSAGES,
            json={"conversation_id": conversation, "user_id": user_id, "text": "what did I just ask?"},
            headers=_headers(shop, "write"),
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "conversation_not_allowed"
    stored = client.get(f"/v1/assistant/conversations/{conversation}", headers=_headers(shop, "read")).json()
    assert len(stored["messages"]) == 2  # nothing of the refused messages was stored


def test_sending_messages_needs_a_write_key(client: TestClient, shop: Shop) -> None:
    message = {"text": "hello"}
    assert client.post(MESSAGES, json=message).status_code == 401
    refused = client.post(MESSAGES, json=message, headers=_headers(shop, "read"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert client.get("/v1/assistant/conversations/x").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "  \n "}, "text"),
        ({"text": "x" * 10_001}, "text"),
        ({"text": 5}, "text"),
        ({"text": "hi", "user_id": ""}, "user_id"),
        ({"text": "hi", "conversation_id": "has spaces/and slashes"}, "conversation_id"),
        ({"text": "hi", "conversation_id": "c" * 97}, "conversation_id"),
        ({"text": "hi", "role": "system"}, "role"),
    ],
)
def test_invalid_messages_are_422(client: TestClient, shop: Shop, body: dict[str, object], field: str) -> None:
    response = client.post(MESSAGES, json=body, headers=_headers(shop, "write"))
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


def test_the_longest_message_taken_is_answered(client: TestClient, shop: Shop) -> None:
    turn = _say(client, shop, "where is my parcel? " * 500)  # exactly 10,000 characters, as a guest
    assert turn["text"] and turn["intent"] != "error"


def test_turns_are_counted_in_the_metrics(client: TestClient, shop: Shop) -> None:
    _say(client, shop, "hi")
    metrics = client.get("/metrics").text
    assert "shoplm_assistant_turns_total" in metrics
    assert 'route="/v1/assistant/messages"' in metrics
