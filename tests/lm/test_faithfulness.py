"""The faithfulness checker: a reply's amounts, dates, periods and order ids must be in its facts."""

from __future__ import annotations

from shoplm.lm import Fact
from shoplm.lm.faithfulness import check_faithfulness, claims

FACTS = [
    Fact("order_id", "O0000123", "orders:O0000123"),
    Fact("amount", "¥199.00", "orders:O0000123"),
    Fact("order_date", "2026-03-01", "orders:O0000123"),
    Fact("policy", "Refunds go back within 3-5 business days; returns within 7 days of delivery.", "returns.md"),
]


def test_a_grounded_reply_passes_in_english_and_chinese() -> None:
    english = "Order O0000123 (¥199.00, ordered on 2026-03-01) will be refunded within 3-5 business days."
    chinese = "订单 O0000123 金额 199.00元，于2026年3月1日下单，退款将在3-5个工作日内原路退回，签收后7天内可退货。"
    for text in (english, chinese):
        report = check_faithfulness(text, FACTS)
        assert report.ok, report.unsupported
        assert len(report.claims) >= 4


def test_invented_amounts_dates_periods_and_ids_are_reported() -> None:
    text = "We refunded ¥250.00 for order O0000999 on 2026-04-02; it arrives within 24 hours, and you get 10% off."
    report = check_faithfulness(text, FACTS)
    assert not report.ok
    assert report.unsupported == ["¥250.00", "O0000999", "2026-04-02", "24 hours", "10%"]


def test_a_reply_without_checkable_claims_passes_and_plain_strings_ground_too() -> None:
    assert check_faithfulness("Thanks, happy to help!", FACTS).ok
    assert check_faithfulness("Express costs ¥25.", ["Express delivery (¥25) takes 1-2 business days."]).ok
    assert claims("no numbers here") == []


def test_policy_promises_need_a_policy_that_allows_them() -> None:
    returns = Fact("policy", "Faulty or damaged items: returned or exchanged within 30 days; we pay shipping.", "r.md")
    grounded = "Sorry! Faulty items can be returned or exchanged within 30 days, and we pay the return shipping."
    assert check_faithfulness(grounded, [returns]).ok
    invented = (
        "Sorry! We will send a replacement, a full refund and compensation, with free shipping on your next order."
    )
    report = check_faithfulness(invented, [Fact("policy", "Refunds take 3-5 business days.", "r.md")])
    # "refund" is allowed by the refund policy, a *full* refund is not; nothing allows the rest.
    assert report.unsupported == ["replacement", "full refund", "compensation", "free shipping"]
    chinese = "非常抱歉，我们为您提供免费退货、全额退款、赔偿和换新。"
    assert check_faithfulness(chinese, FACTS).unsupported == ["免费退货", "全额退款", "赔偿", "换新"]
    assert check_faithfulness("可以包退换。", ["质量问题：签收后30天内可退换。"]).unsupported == ["包退"]


def test_the_customers_own_words_never_ground_a_promise() -> None:
    review = Fact("review_text", "It broke. I want a full refund and compensation!", "reviews:R1")
    report = check_faithfulness("We will give you a full refund and compensation.", [review])
    assert report.unsupported == ["full refund", "compensation"]
    # A fact's key speaks for the shop: a refund amount grounds "refund" (the assistant's refund_started).
    assert check_faithfulness(
        "We have started a refund for order O0000123.", [*FACTS[:1], Fact("refund_amount", "¥5", "o")]
    ).ok


def test_numbers_inside_ids_and_dates_ground_no_amount() -> None:
    facts = [Fact("order_id", "O0000034", "o"), Fact("order_date", "2026-06-10", "o")]
    assert check_faithfulness("Enjoy 34% off, delivered within 6 days.", facts).unsupported == ["34%", "6 days"]
    assert check_faithfulness("Order O0000034 of 2026-06-10.", facts).ok


def test_dates_next_to_chinese_characters_are_claims_too() -> None:
    assert check_faithfulness("我们将在2026-05-20前退款。", FACTS).unsupported == ["2026-05-20"]
    assert check_faithfulness("订单于2026-03-01下单。", FACTS).ok
