"""Unit tests of the assistant's dialogue side: tools, confirmation, grounding, escalation, persistence, entities."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from shoplm.app.assistant import Assistant
from shoplm.assistant.dialogue import extract_address, keyword_intent, yes_or_no
from shoplm.assistant.emotion import detect_emotion
from shoplm.assistant.entities import detect_language, extract_amounts, extract_order_ids
from shoplm.assistant.retrieval import split_markdown
from shoplm.assistant.tools import OrderTools
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store.orders import order_content_hash
from shoplm.store.schema import messages, order_lines, orders
from tests.assistant.dialogue_fixtures import Kit, make_bot
from tests.assistant.dialogue_shop import Shop


def _user(shop: Shop, raw: str) -> str:
    return Pseudonymizer(shop.settings.hmac_key).user(raw)


def _status(shop: Shop, order_id: str) -> str:
    with shop.store.engine.connect() as conn:
        return conn.execute(select(orders.c.status).where(orders.c.order_id == order_id)).scalar_one()


# -- tools ---------------------------------------------------------------------------------
def test_track_reads_the_store(shop: Shop) -> None:
    result = OrderTools(shop.store.orders).track("O0000103", _user(shop, "U1"))
    facts = {f.key: f.value for f in result.facts}
    assert result.outcome == "ok" and facts["status"] == "delivered" and facts["amount"] == "¥175.00"
    assert [f.value for f in result.facts if f.key == "line"] == [
        "Ceramic Coffee Mug × 1 (¥39.00)",
        "Organic Green Tea 250g × 2 (¥68.00)",
    ]


@pytest.mark.parametrize(
    ("tool", "order_id", "outcome"),
    [
        ("cancel", "O0000101", "ok"),
        ("cancel", "O0000104", "ok"),
        ("cancel", "O0000102", "not_allowed"),
        ("cancel", "O0000103", "not_allowed"),
        ("cancel", "O0000105", "not_allowed"),
        ("refund", "O0000101", "ok"),
        ("refund", "O0000102", "ok"),
        ("refund", "O0000103", "ok"),
        ("refund", "O0000104", "not_allowed"),
        ("refund", "O0000105", "not_allowed"),
        ("change_address", "O0000101", "ok"),
        ("change_address", "O0000102", "not_allowed"),
        ("cancel", "O0000301", "unknown_order"),  # another user's order
        ("cancel", "O0000999", "unknown_order"),
    ],
)
def test_status_rules(shop: Shop, tool: str, order_id: str, outcome: str) -> None:
    result = OrderTools(shop.store.orders).check(
        tool, order_id, _user(shop, "U1"), new_address="1 New Street, Suzhou 215000"
    )
    assert result.outcome == outcome


def test_apply_changes_status_and_keeps_the_content_hash_consistent(shop: Shop) -> None:
    tools = OrderTools(shop.store.orders)
    result = tools.apply("change_address", "O0000101", _user(shop, "U1"), new_address="1 New Street, Suzhou 215000")
    assert result.outcome == "done"
    assert tools.apply("cancel", "O0000101", _user(shop, "U1")).outcome == "done"
    assert tools.apply("cancel", "O0000101", _user(shop, "U1")).outcome == "not_allowed"  # re-checked inside
    order = shop.store.frame("orders", where=orders.c.order_id == "O0000101").iloc[0].to_dict()
    lines = shop.store.frame("order_lines", where=order_lines.c.order_id == "O0000101", order_by=["line_no"])
    assert order["status"] == "cancelled" and order["shipping_address"] == "1 New Street, Suzhou 215000"
    assert order["content_hash"] == order_content_hash(order, lines)


def test_other_users_order_is_never_changed(shop: Shop) -> None:
    assert OrderTools(shop.store.orders).apply("cancel", "O0000301", _user(shop, "U1")).outcome == "unknown_order"
    assert _status(shop, "O0000301") == "paid"


# -- the confirmation rule -----------------------------------------------------------------
def test_nothing_changes_without_an_explicit_yes(bot: Assistant, shop: Shop) -> None:
    turn = bot.reply("c", "U1", "cancel order O0000101 now, I confirm in advance, yes yes")
    assert [a.outcome for a in turn.actions] == ["proposed"] and _status(shop, "O0000101") == "paid"
    turn = bot.reply("c", "U1", "what is the refund policy?")  # not an answer to the question
    assert _status(shop, "O0000101") == "paid"
    turn = bot.reply("c", "U1", "yes")  # the proposal was dropped
    assert not any(a.outcome == "done" for a in turn.actions) and _status(shop, "O0000101") == "paid"


def test_yes_no() -> None:
    assert [yes_or_no(t) for t in ["yes", "Yes please!", "确认", "是的", "好的，谢谢", "ok"]] == ["yes"] * 6
    assert [yes_or_no(t) for t in ["no", "No thanks", "不", "算了", "不用了"]] == ["no"] * 5
    assert yes_or_no("yes and also refund every other order of mine please now") is None
    assert yes_or_no("是不是已经发货了") is None and yes_or_no("对不起") is None


# -- grounding -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "text"),
    [
        ("U1", "where is my order O0000103?"),
        ("U1", "cancel O0000101"),
        ("U1", "I want a refund for O0000102"),
        ("U2", "订单O0000201到哪了"),
        ("U1", "how much is the trail running shoes?"),
        ("U1", "how long do refunds take?"),
        ("U2", "推荐一个保温杯"),
    ],
)
def test_reply_numbers_and_statuses_come_from_the_facts(bot: Assistant, user: str, text: str) -> None:
    turn = bot.reply("g", user, text)
    assert turn.facts, turn.text
    facts_text = " ".join(f.value for f in turn.facts)
    unlisted = re.sub(r"(?m)^\d+\. ", "", turn.text)  # list numbering is not a fact
    for number in re.findall(r"\d+(?:[.,]\d+)*", unlisted):
        assert number in facts_text, (number, turn.text)
    statuses = {"pending", "paid", "shipped", "delivered", "cancelled", "refunded", "returned"}
    said = {w for w in re.findall(r"[a-z]+", turn.text.lower()) if w in statuses}
    stated = {f.value for f in turn.facts if f.key == "status"}
    assert said <= stated | {"cancelled"} if "can no longer be cancelled" in turn.text else said <= stated


# -- escalation, persistence, robustness ---------------------------------------------------
def test_escalation_summary_is_stored(bot: Assistant) -> None:
    bot.reply("e", "U1", "where is O0000102?")
    turn = bot.reply("e", "U1", "WHERE IS IT??? this is unacceptable!!!")
    assert turn.escalated
    state = bot.state("e")
    assert bot.status("e") == "escalated" and state["escalation"]["reason"] == "anger"
    assert state["escalation"]["order_in_focus"] == "O0000102"
    assert state["escalation"]["intent_history"][0] == "track_order"
    assert "unacceptable" in state["escalation"]["last_customer_messages"][-1]
    assert bot.reply("e", "U1", "hello?").escalated  # stays with the colleague


def test_restart_loses_nothing(shop: Shop, kit: Kit) -> None:
    first = make_bot(shop, kit)
    assert first.reply("r", "U1", "please cancel order O0000104").actions[0].outcome == "proposed"
    second = make_bot(shop, kit)  # a new process over the same store
    turn = second.reply("r", "U1", "yes")
    assert turn.actions[0].outcome == "done" and _status(shop, "O0000104") == "cancelled"
    with shop.store.engine.connect() as conn:
        rows = conn.execute(select(messages.c.role, messages.c.text).order_by(messages.c.ts_ms)).fetchall()
    assert [r[0] for r in rows] == ["customer", "assistant", "customer", "assistant"]


def test_pii_is_masked_and_user_ids_pseudonymized(bot: Assistant, shop: Shop) -> None:
    bot.reply("p", "U1", "my email is ann@example.com and phone 13800138000, where is O0000102?")
    with shop.store.engine.connect() as conn:
        texts = [r[0] for r in conn.execute(select(messages.c.text))]

    assert "ann@example.com" not in " ".join(texts) and "[email]" in texts[0] and "[phone]" in texts[0]
    state = json.dumps(bot.state("p"), ensure_ascii=False)
    assert "ann@example.com" not in state and "13800138000" not in state


def test_another_users_conversation_is_refused(bot: Assistant) -> None:
    bot.reply("x", "U1", "where is O0000102?")
    turn = bot.reply("x", "U2", "what was the last order?")
    assert turn.intent == "error" and "O0000102" not in turn.text


def test_no_exception_reaches_the_customer(bot: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.tools, "track", boom)
    turn = bot.reply("b", "U1", "where is O0000102?")
    assert turn.intent == "error" and "colleague" in turn.text


# -- pieces --------------------------------------------------------------------------------
def test_entities() -> None:
    assert extract_order_ids("订单O0000012和 #A1001，order number 12345678; call 13800138000") == [
        "O0000012",
        "A1001",
        "12345678",
    ]
    amounts = [(a.value, a.currency) for a in extract_amounts("¥199, 300元, $5.50, 1,299 CNY, 20 USD")]
    assert amounts == [(199.0, "CNY"), (300.0, "CNY"), (5.5, "USD"), (1299.0, "CNY"), (20.0, "USD")]
    assert detect_language("我的订单到哪了") == "zh" and detect_language("where is it") == "en"
    assert detect_language("") == "en"


def test_product_mentions_link_to_catalog_items(bot: Assistant) -> None:
    mentions = bot.models.extractor.link_products("is the ceramic coffee mug dishwasher safe?")
    assert mentions and mentions[0].item_id == "I003"
    assert bot.models.extractor.link_products("I003 please")[0].method == "id"


def test_emotion_address_keywords_and_markdown() -> None:
    assert detect_emotion("I'm so angry, this is a scam!!").angry
    assert detect_emotion("你们这是什么破服务，气死我了").angry
    assert not detect_emotion("where is my order, thanks!").angry
    assert extract_address("把地址改成上海市浦东新区世纪大道100号") == "上海市浦东新区世纪大道100号"
    assert extract_address("send it to a new address") == ""
    assert keyword_intent("转人工") == "contact_human_agent"
    passages = split_markdown(
        "r.md", "# Returns\n\n## English\n\n- **7-day** returns\n  for unused items\n\n## 中文\n\n- 七天无理由退货"
    )
    assert [(p.text, p.section, p.language) for p in passages] == [
        ("7-day returns for unused items", "Returns", "en"),
        ("七天无理由退货", "Returns", "zh"),
    ]
