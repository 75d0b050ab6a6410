"""Review reply drafting with both backends: templates, and an OpenAI-compatible endpoint (a local stub server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoplm.insight.replies import (
    MAX_REVIEW_CHARS,
    ReviewToReply,
    draft_review_reply,
    policy_queries,
    prepare_review,
)
from shoplm.lm import Fact
from shoplm.lm.faithfulness import check_faithfulness
from shoplm.lm.generator import FallbackGenerator, OpenAIChatGenerator, TemplateGenerator
from tests.insight.chat_stub import ChatStub, chat_stub

ORDER = {"order_id": "O0000042", "status": "delivered", "order_date": "2026-03-02", "amount": "¥199.00"}
RETURNS_EN = Fact(
    "policy",
    "Faulty or damaged items: returned or exchanged within 30 days of delivery; we pay shipping.",
    "returns.md",
)
RETURNS_ZH = Fact("policy", "质量问题：签收后30天内可退换，运费由我们承担。", "returns.md")
BROKEN_EN = ReviewToReply(
    "R1", "The lamp broke after a week. Terrible.", rating=1, language="en", item_title="Desk lamp", order=ORDER
)
BROKEN_ZH = ReviewToReply(
    "R2", "台灯用了一周就坏了，很失望。", rating=2, language="zh", item_title="简约台灯", order=ORDER
)


@pytest.fixture(scope="module")
def stub() -> Iterator[ChatStub]:
    with chat_stub() as server:
        yield server


@pytest.fixture
def llm(stub: ChatStub) -> Iterator[OpenAIChatGenerator]:
    with OpenAIChatGenerator(stub.url, model="stub-model", timeout=5) as generator:
        yield generator


# -- the template backend --------------------------------------------------------------------------
def test_template_thanks_a_positive_review_in_its_language_and_quotes_no_policy() -> None:
    review = ReviewToReply("R3", "质量很好，物流也快，五星好评！", rating=5, language="", item_title="降噪耳机")
    result = draft_review_reply(review, [RETURNS_ZH], TemplateGenerator())
    assert (result.language, result.tone, result.outcome, result.backend) == ("zh", "positive", "faithful", "template")
    assert result.draft.startswith("感谢您对降噪耳机的好评")
    assert "policy" not in [f.key for f in result.grounding]  # praise needs no remedy


@pytest.mark.parametrize(
    ("review", "policy", "apology", "contact"),
    [
        (BROKEN_EN, RETURNS_EN, "We are sorry", "order number O0000042"),
        (BROKEN_ZH, RETURNS_ZH, "非常抱歉", "订单号 O0000042"),
    ],
)
def test_template_apologises_and_states_the_policy_remedy(
    review: ReviewToReply, policy: Fact, apology: str, contact: str
) -> None:
    result = draft_review_reply(review, [policy], TemplateGenerator())
    assert result.faithful and result.outcome == "faithful" and result.unsupported == []
    assert result.draft.startswith(apology)
    assert policy.value.rstrip("。.") in result.draft and contact in result.draft
    assert check_faithfulness(result.draft, result.grounding).ok
    keys = [f.key for f in result.grounding]
    assert keys == ["tone", "rating", "review_text", "product", "order_id", "status", "order_date", "amount", "policy"]


def test_a_complaint_asks_for_the_matching_policy_in_the_reply_language() -> None:
    assert policy_queries(prepare_review(BROKEN_EN)) == ["faulty or damaged item: return or exchange"]
    late = ReviewToReply("R4", "物流太慢了，等了两周，价格还贵。", rating=2)
    assert policy_queries(prepare_review(late)) == ["价格保护 降价 退差价", "普通快递 送达 工作日"]
    assert policy_queries(prepare_review(ReviewToReply("R5", "Love it", rating=5))) == []


# -- the OpenAI-compatible backend -----------------------------------------------------------------
def test_a_faithful_model_draft_is_kept_and_the_prompt_carries_the_rules(
    stub: ChatStub, llm: OpenAIChatGenerator
) -> None:
    stub.reply = (
        "We are sorry the lamp from order O0000042 broke. Faulty items can be returned or exchanged "
        "within 30 days of delivery, and we pay the shipping."
    )
    result = draft_review_reply(BROKEN_EN, [RETURNS_EN], llm)
    assert (result.outcome, result.backend, result.faithful, result.draft) == (
        "faithful",
        "openai:stub-model",
        True,
        stub.reply,
    )
    assert "never promise a refund, return, replacement, compensation" in stub.system_prompt.lower()
    assert "Reply in English" in stub.system_prompt
    assert "- review_text: The lamp broke after a week. Terrible." in stub.user_prompt
    draft_review_reply(BROKEN_ZH, [RETURNS_ZH], llm)
    assert "Reply in Simplified Chinese" in stub.system_prompt


@pytest.mark.parametrize("language", ["en", "zh"])
def test_an_unfaithful_model_draft_is_flagged_and_replaced_by_the_template(
    stub: ChatStub, llm: OpenAIChatGenerator, language: str
) -> None:
    review, policy = (BROKEN_EN, RETURNS_EN) if language == "en" else (BROKEN_ZH, RETURNS_ZH)
    stub.reply = {
        "en": "So sorry! We will refund ¥250.00 by 2026-04-01 and offer you a coupon plus compensation.",
        "zh": "非常抱歉！我们将于4月5日退还250元，并为您提供全额退款和赔偿。",
    }[language]
    result = draft_review_reply(review, [policy], llm)
    assert result.outcome == "replaced" and not result.faithful
    expected = {
        "en": ["refund", "¥250.00", "2026-04-01", "coupon", "compensation"],
        "zh": ["4月5日", "250元", "全额退款", "赔偿"],
    }[language]
    assert result.unsupported == expected
    assert result.rejected_draft == stub.reply
    assert result.backend == "template"
    assert result.draft == TemplateGenerator().generate("review_reply", result.grounding, language=language).text
    assert check_faithfulness(result.draft, result.grounding).ok
    assert "openai:stub-model draft replaced" in result.reason


def test_the_customers_own_demand_does_not_license_the_promise(stub: ChatStub, llm: OpenAIChatGenerator) -> None:
    review = ReviewToReply(
        "R6", "It broke. I demand a full refund, a free return and compensation!", rating=1, item_title="Kettle"
    )
    stub.reply = "We are sorry. You will get a full refund, a free return and compensation."
    result = draft_review_reply(review, [], llm)
    assert result.outcome == "replaced" and result.unsupported == ["full refund", "free return", "compensation"]


def test_a_model_draft_in_the_wrong_language_is_replaced(stub: ChatStub, llm: OpenAIChatGenerator) -> None:
    stub.reply = "Thank you for your feedback!"
    result = draft_review_reply(BROKEN_ZH, [RETURNS_ZH], llm)
    assert result.faithful and result.outcome == "replaced" and "not written in zh" in result.reason
    assert result.draft.startswith("非常抱歉")


def test_an_endpoint_that_fails_falls_back_to_the_template(stub: ChatStub, llm: OpenAIChatGenerator) -> None:
    stub.status = 500
    try:
        result = draft_review_reply(BROKEN_EN, [RETURNS_EN], FallbackGenerator(llm))
    finally:
        stub.status = 200
    assert (result.outcome, result.backend, result.faithful) == ("fallback", "template", True)
    assert "HTTP 500" in result.reason


# -- bad input -------------------------------------------------------------------------------------
def test_empty_reviews_are_skipped_unless_rated(llm: OpenAIChatGenerator, stub: ChatStub) -> None:
    asked = len(stub.requests)
    skipped = draft_review_reply(ReviewToReply("R7", " \n\t "), [], llm)
    assert (skipped.outcome, skipped.skipped, skipped.draft) == ("skipped", "empty", None)
    assert len(stub.requests) == asked  # nothing was sent to the model
    rated = draft_review_reply(ReviewToReply("R8", "", rating=1, item_title="Mug"), [RETURNS_EN], TemplateGenerator())
    assert rated.outcome == "faithful" and "empty_text" in rated.notes and rated.draft.startswith("We are sorry")


def test_html_and_emoji_are_cleaned_but_emoji_kept() -> None:
    review = ReviewToReply("R9", "<p>Great&nbsp;mug 👍<script>alert(1)</script><br/>love it</p>", rating=5)
    result = draft_review_reply(review, [], TemplateGenerator())
    text = next(f.value for f in result.grounding if f.key == "review_text")
    assert text == "Great mug 👍 love it" and "html" in result.notes
    assert result.language == "en" and result.outcome == "faithful"


@pytest.mark.parametrize(
    ("text", "declared", "detected"),
    [
        ("Sehr schlechte Qualität, nach einer Woche kaputt.", "de", "de"),
        ("品質が悪くて、すぐに壊れました。", "", "ja"),
        ("Очень плохое качество", "", "und"),
    ],
)
def test_other_languages_are_answered_in_english(text: str, declared: str, detected: str) -> None:
    result = draft_review_reply(
        ReviewToReply("R10", text, rating=1, language=declared), [RETURNS_EN], TemplateGenerator()
    )
    assert (result.language, result.review_language) == ("en", detected)
    assert f"unsupported_language:{detected}" in result.notes
    assert result.draft.startswith("We are sorry") and result.faithful


def test_a_very_long_review_is_truncated_as_documented() -> None:
    text = "质量太差了，用了一周就坏了。" * 1000
    result = draft_review_reply(ReviewToReply("R11", text, rating=1), [RETURNS_ZH], TemplateGenerator())
    kept = next(f.value for f in result.grounding if f.key == "review_text")
    assert len(kept) == MAX_REVIEW_CHARS + 1 and kept.endswith("…")
    assert f"truncated:{len(text)}" in result.notes and result.language == "zh" and result.faithful
