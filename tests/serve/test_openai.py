"""The OpenAI-compatible chat API, driven by the official ``openai`` client against the running server."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from shoplm.store import Store
from tests.serve.conftest import ServerProcess, Shop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import shutil

    data_dir = tmp_path_factory.mktemp("openai") / "data"
    shutil.copytree(shop.data_dir, data_dir)
    running = ServerProcess(data_dir, workers=1).start()
    yield running
    running.stop()


def client(server: ServerProcess, shop: Shop, scope: str = "write") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=shop.keys[scope], max_retries=0, timeout=60)


def _order(shop: Shop, status: str) -> tuple[str, str]:
    """A user and one of their orders in ``status`` (the demo shop is deterministic and has every status)."""
    found = [(u, o) for u, orders in shop.all_orders.items() for o, s in orders if s == status]
    assert found, f"the test shop has no {status} order"
    return found[0]


def _status(server: ServerProcess, shop: Shop, order_id: str) -> str:
    store = Store.open(shop.settings(server.data_dir).database_url)
    try:
        return str(store.orders.get(order_id)["status"])  # type: ignore[index]
    finally:
        store.close()


def test_models_lists_the_assistant(server: ServerProcess, shop: Shop) -> None:
    models = client(server, shop, "read").models.list()
    assert [m.id for m in models.data] == ["shoplm-assistant"]


def test_a_chat_continues_from_the_history_the_client_sends(server: ServerProcess, shop: Shop) -> None:
    user, order_id = _order(shop, "paid")
    chat = client(server, shop)
    history = [{"role": "system", "content": "You are the shop's assistant."}]
    history.append({"role": "user", "content": f"please cancel order {order_id}"})
    first = chat.chat.completions.create(model="shoplm-assistant", messages=history, user=user)
    reply = first.choices[0].message.content or ""
    assert first.choices[0].finish_reason == "stop" and order_id in reply
    assert first.model_extra["shoplm"]["actions"][0]["outcome"] == "proposed"  # type: ignore[index]
    assert _status(server, shop, order_id) == "paid"  # nothing changes before the customer confirms
    # A chat UI sends the whole history again: the stored conversation, its pending change included, goes on.
    history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "yes"}]
    second = chat.chat.completions.create(model="shoplm-assistant", messages=history, user=user)
    assert second.model_extra["shoplm"]["conversation_id"] == first.model_extra["shoplm"]["conversation_id"]  # type: ignore[index]
    assert [a["outcome"] for a in second.model_extra["shoplm"]["actions"]] == ["done"]  # type: ignore[index]
    assert _status(server, shop, order_id) == "cancelled"
    assert second.usage is not None and second.usage.total_tokens > 0


def test_metadata_resumes_a_conversation_and_another_user_is_refused(server: ServerProcess, shop: Shop) -> None:
    user, order_id = _order(shop, "shipped")
    chat = client(server, shop)
    first = chat.chat.completions.create(
        model="shoplm-assistant", messages=[{"role": "user", "content": f"where is order {order_id}?"}], user=user
    )
    conversation = first.model_extra["shoplm"]["conversation_id"]  # type: ignore[index]
    again = chat.chat.completions.create(
        model="shoplm-assistant",
        messages=[{"role": "user", "content": "where is my order now?"}],
        user=user,
        metadata={"conversation_id": conversation},
    )
    assert again.model_extra["shoplm"]["conversation_id"] == conversation  # type: ignore[index]
    assert order_id in (again.choices[0].message.content or "")  # the order in focus carried over
    with pytest.raises(openai.PermissionDeniedError):
        chat.chat.completions.create(
            model="shoplm-assistant",
            messages=[{"role": "user", "content": "what did I order?"}],
            user="someone-else",
            metadata={"conversation_id": conversation},
        )


def test_streaming_and_an_anonymous_visitor(server: ServerProcess, shop: Shop) -> None:
    _user, order_id = _order(shop, "shipped")
    chat = client(server, shop)
    stream = chat.chat.completions.create(
        model="shoplm-assistant",
        messages=[{"role": "user", "content": f"where is order {order_id}?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # No `user`: an anonymous visitor, for whom no order tool finds anything.
    assert text and "shipped" not in text.lower()
    details = next(c.model_extra["shoplm"] for c in chunks if c.choices and c.choices[0].finish_reason)  # type: ignore[index]
    assert all(a["outcome"] in ("unknown_order", "needs_input") for a in details["actions"]), details


def test_scopes_models_and_bad_requests(server: ServerProcess, shop: Shop) -> None:
    message = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.PermissionDeniedError):
        client(server, shop, "read").chat.completions.create(model="shoplm-assistant", messages=message)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="slm_nope_nope", max_retries=0).models.list()
    with pytest.raises(openai.UnprocessableEntityError):  # the one model is the shop assistant
        client(server, shop).chat.completions.create(model="gpt-4o", messages=message)
    with pytest.raises(openai.NotFoundError):
        client(server, shop).chat.completions.create(
            model="shoplm-assistant", messages=message, metadata={"conversation_id": "no-such-conversation"}
        )
    # Nothing asked: the assistant asks how it can help, in the shape of any other answer.
    nothing = client(server, shop).chat.completions.create(
        model="shoplm-assistant", messages=[{"role": "system", "content": "be nice"}]
    )
    assert nothing.model_extra["shoplm"]["intent"] == "empty" and nothing.choices[0].message.content  # type: ignore[index]


def test_the_route_needs_no_server_state_between_requests(server: ServerProcess, shop: Shop) -> None:
    # A different client (a new connection) with the same history finds the same conversation.
    user, order_id = _order(shop, "delivered")
    history = [{"role": "user", "content": f"where is order {order_id}?"}]
    first = client(server, shop).chat.completions.create(model="shoplm-assistant", messages=history, user=user)
    history += [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "ok"}]
    second = client(server, shop).chat.completions.create(model="shoplm-assistant", messages=history, user=user)
    assert second.model_extra["shoplm"]["conversation_id"] == first.model_extra["shoplm"]["conversation_id"]  # type: ignore[index]
