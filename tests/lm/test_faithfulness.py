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
