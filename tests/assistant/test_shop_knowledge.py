"""The pieces behind answers from what the shop knows: returns, order choice, product fields, price bands."""

from __future__ import annotations

import json
import time

import pytest

from shoplm.assistant.entities import EntityExtractor, title_words
from shoplm.assistant.order_turns import is_correction, pick_option
from shoplm.assistant.product_answers import answer_fields, price_band, question_topics
from shoplm.assistant.tools import DAY_MS, MemoryOrderBook, OrderTools, ReturnPolicy
from shoplm.lm.classify.metrics import accuracy_by, confusion_pairs

NOW = int(time.time() * 1000)


def _tools(updated_days_ago: float, item: str = "I1", status: str = "delivered") -> OrderTools:
    order = {
        "order_id": "O1",
        "user_id": "u",
        "status": status,
        "currency": "CNY",
        "total_amount": 39.0,
        "created_ms": NOW - 20 * DAY_MS,
        "updated_ms": NOW - int(updated_days_ago * DAY_MS),
    }
    line = {"line_no": 0, "item_id": item, "quantity": 1, "unit_price": 39.0, "title": "Mug"}
    categories = {"I1": "Home > Kitchen", "I2": "Food > Tea"}
    return OrderTools(MemoryOrderBook([order], {"O1": [line]}), category_of=categories.get)


def test_a_return_is_checked_against_status_window_and_category_then_applied() -> None:
    ok = _tools(2).check("return", "O1", "u")
    assert ok.outcome == "ok" and {f.key for f in ok.facts} >= {"delivered_on", "return_by", "amount"}
    assert _tools(8).check("return", "O1", "u").reason == "window"
    assert _tools(2, item="I2").check("return", "O1", "u").reason == "excluded"
    assert _tools(2, status="shipped").check("return", "O1", "u").reason == "status"
    assert _tools(2).check("return", "O1", "someone else").outcome == "unknown_order"
    tools = _tools(2)
    done = tools.apply("return", "O1", "u")
    assert done.outcome == "done" and tools.orders.get("O1")["status"] == "return_requested"
    assert tools.apply("return", "O1", "u").outcome == "not_allowed"  # not twice


def test_return_policy_exclusions_match_any_level_of_the_category_path() -> None:
    policy = ReturnPolicy(days=14, excluded_categories=("Tea & Coffee", "makeup"))
    assert policy.excludes("Grocery > Tea & Coffee") and policy.excludes("Beauty > Makeup")
    assert not policy.excludes("Home > Coffee Makers") and not policy.excludes("")


def test_choices_and_corrections_are_read_from_short_answers() -> None:
    options = ["O3", "O2", "O1"]
    assert pick_option("the second one", options) == "O2"
    assert pick_option("第三个", options) == "O1"
    assert pick_option("the latest", options) == "O3"
    assert pick_option("2", options) == "O2"
    assert pick_option("the fifth one", options) is None
    assert pick_option("second", []) is None
    for text in ("no, the other order", "not this one", "wrong order", "不是这个", "另外一个订单"):
        assert is_correction(text), text
    for text in ("yes", "where is my order", "another question about shipping costs"):
        assert not is_correction(text), text


def test_product_questions_are_answered_from_the_field_they_ask_about() -> None:
    row = {
        "title": "Electric Kettle",
        "description": "1.7 L kettle. Stainless steel inside, automatic shut-off. HDMI cable not included.",
        "attributes": json.dumps({"material": "Stainless steel", "color": "Black"}),
    }
    material = answer_fields("what is it made of?", row)
    assert material[0].field == "attributes.material" and material[0].value == "Stainless steel"
    assert answer_fields("这个是什么颜色", row)[0].value == "Black"
    hdmi = answer_fields("does it come with an HDMI cable?", row)
    assert hdmi[0].field == "description" and "HDMI" in hdmi[0].value
    assert answer_fields("can I use it on a boat at sea?", row) == []
    assert question_topics("how much is it and is it in stock") == ["price", "stock"]
    assert answer_fields("color?", {"title": "x", "attributes": "not json"}) == []


@pytest.mark.parametrize(
    ("text", "band"),
    [
        ("a gift under 50", (None, 50.0)),
        ("something below $30 please", (None, 30.0)),
        ("推荐一个50元以内的礼物", (None, 50.0)),
        ("between 100 and 300 yuan", (100.0, 300.0)),
        ("100-200块的耳机", (100.0, 200.0)),
        ("300元以上的手表", (300.0, None)),
        ("my budget is 80", (None, 80.0)),
        ("预算200块左右", (160.0, 240.0)),
        ("running shoes size 42", (None, None)),
        ("best headphones of 2024", (None, None)),
    ],
)
def test_price_bands_are_read_from_requests(text: str, band: tuple[float | None, float | None]) -> None:
    assert price_band(text) == band


def test_distinctive_title_words_link_a_product_and_shared_words_do_not() -> None:
    titles = {f"I{n}": f"Cotton T-Shirt {n}" for n in range(5)} | {"M1": "27-inch 4K Monitor", "K1": "不锈钢保温杯"}
    extractor = EntityExtractor(titles=titles)
    assert [m.item_id for m in extractor.link_products("does the monitor come with a cable")] == ["M1"]
    assert [m.item_id for m in extractor.link_products("这个保温杯能装开水吗")] == ["K1"]
    assert extractor.link_products("is the cotton shirt soft") == []  # five shirts: no guess
    assert title_words("Monitors") == {"monitor"}


def test_accuracy_by_group_and_the_most_frequent_confusions() -> None:
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "a", "a", "c"]
    groups = ["en", "zh", "en", "zh", "zh"]
    assert accuracy_by(gold, predicted, groups) == {"en": {"accuracy": 0.5, "n": 2}, "zh": {"accuracy": 1 / 3, "n": 3}}
    assert confusion_pairs(gold, predicted) == [
        {"gold": "b", "predicted": "a", "count": 2},
        {"gold": "a", "predicted": "b", "count": 1},
    ]
    with pytest.raises(ValueError):
        accuracy_by(gold, predicted, groups[:2])
