"""The scripted conversation suite: every script in ``conversations/`` against a small shop, and via ``shoplm chat``."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from shoplm.cli.assistant import register_chat
from tests.assistant.conversation_runner import check_turn, load_scripts
from tests.assistant.dialogue_fixtures import Kit, make_bot
from tests.assistant.dialogue_shop import Shop

SCRIPTS = load_scripts()


def test_the_suite_is_big_and_bilingual() -> None:
    assert len(SCRIPTS) >= 30
    texts = [t["say"] for s in SCRIPTS.values() for t in s["turns"]]
    assert any("订单" in t for t in texts) and any("order" in t for t in texts)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_conversation(name: str, shop: Shop, kit: Kit) -> None:
    script = SCRIPTS[name]
    assistant = make_bot(shop, kit)
    problems: list[str] = []
    for index, step in enumerate(script["turns"]):
        turn = assistant.reply(name, script["user"], step["say"]).to_dict()
        turn["_index"] = index
        problems += check_turn(turn, step.get("expect") or {}, shop.store, name)
    assert not problems, "\n".join(problems)


def _chat_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # keeps "chat" a sub-command, as on the real app
        pass

    register_chat(app)
    return app


@pytest.mark.parametrize(
    "name", ["03_cancel_paid_yes_en", "14_address_change_ask_zh", "33_escalation_anger_en", "40_negative_sentiment_en"]
)
def test_conversation_through_shoplm_chat(name: str, shop: Shop, kit: Kit) -> None:
    # The CLI loads the saved intent and sentiment models from the shop's models dir, like a user's install.
    kit.save_models(shop.settings)
    script = SCRIPTS[name]
    lines = "\n".join(step["say"] for step in script["turns"]) + "\n"
    args = ["chat", "--json", "--user", script["user"], "--conversation", name]
    args += ["--data-dir", str(shop.settings.data_dir), "--policies", str(shop.policies_dir)]
    import os

    os.environ["SHOPLM_PSEUDONYMIZATION_KEY"] = "test-key"
    os.environ["SHOPLM_ENCODER__THREADS"] = "1"
    try:
        result = CliRunner().invoke(_chat_app(), args, input=lines)
    finally:
        del os.environ["SHOPLM_PSEUDONYMIZATION_KEY"], os.environ["SHOPLM_ENCODER__THREADS"]
    assert result.exit_code == 0, result.output
    turns = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(turns) == len(script["turns"])
    problems: list[str] = []
    store_keys = {"order_status", "order_address", "conversation_status", "escalation_reason", "escalation_focus"}
    for index, (turn, step) in enumerate(zip(turns, script["turns"], strict=True)):
        turn["_index"] = index
        expect = dict(step.get("expect") or {})
        if index < len(turns) - 1:  # the store is seen after the whole script: only the last turn's state
            expect = {k: v for k, v in expect.items() if k not in store_keys}
        problems += check_turn(turn, expect, shop.store, name)
    assert not problems, "\n".join(problems)


def test_plain_output_prints_one_reply_per_line(shop: Shop, kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    kit.save_models(shop.settings)
    monkeypatch.setenv("SHOPLM_PSEUDONYMIZATION_KEY", "test-key")
    args = ["chat", "--user", "U1", "--data-dir", str(shop.settings.data_dir)]
    result = CliRunner().invoke(_chat_app(), args, input="where is my order O0000102?\nthanks\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and "O0000102" in lines[0]
