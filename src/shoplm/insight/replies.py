"""Review reply drafting: the grounding of a reply, the draft, and the faithfulness check every draft passes.

Pure logic, no store: the app layer (:mod:`shoplm.app.review_replies`) reads the review, its
order and the relevant policy passages and hands them over as a :class:`ReviewToReply` and
policy :class:`~shoplm.lm.Fact` objects.

What a draft may say is exactly its grounding (:func:`reply_grounding`): the review (text,
rating, tone), the item's title, the order's facts (id, status, date, amount) when the store
knows the order, and the policy passages chosen for the complaint (:func:`policy_queries`).
Every draft goes through :func:`~shoplm.lm.faithfulness.check_faithfulness`.

Decision on an unfaithful draft: a model's draft that names an amount, date, period, order id
or policy promise the grounding lacks (or that is not in the reply language) is **replaced by
the template draft**, which is built from the grounding alone; the result keeps the rejected
text and its flagged claims (``outcome="replaced"``, ``faithful=False``, ``unsupported``,
``rejected_draft``), so a shop sees how often its model over-promises while never being handed
an over-promise to post. ``faithful`` and ``unsupported`` describe the configured backend's
own draft; ``draft`` is always a text that passed the checker.

Bad input has defined results:

- empty or whitespace text and no rating: skipped (``skipped="empty"``, no draft); empty text
  with a rating: drafted from the rating alone (note ``empty_text``);
- HTML: tags removed and entities decoded before anything reads the text (note ``html``);
  emoji are kept in the text and ignored by language detection;
- longer than :data:`MAX_REVIEW_CHARS` characters: truncated to that (note ``truncated:N``);
- languages other than Chinese and English: the reply is in English (note
  ``unsupported_language:<code>``; ``review_language`` says what was detected).

Example:
    >>> from shoplm.lm import TemplateGenerator
    >>> review = ReviewToReply("R1", "Great lamp, love it!", rating=5, item_title="Desk lamp")
    >>> result = draft_review_reply(review, [], TemplateGenerator())
    >>> result.draft
    'Thank you for your review of Desk lamp! We are glad you like it and look forward to serving you again.'
    >>> result.faithful, result.outcome
    (True, 'faithful')
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoplm.lm.faithfulness import check_faithfulness
from shoplm.lm.generator import Fact, TemplateGenerator, TextGenerator, normalize_language

__all__ = [
    "MAX_REVIEW_CHARS",
    "REPLY_TASK",
    "ReplyDraft",
    "ReviewToReply",
    "clean_review_text",
    "complaint_topics",
    "detect_review_language",
    "draft_review_reply",
    "language_matches",
    "policy_queries",
    "prepare_review",
    "reply_grounding",
    "review_tone",
]

#: The generator task that writes review replies (see :class:`~shoplm.lm.TemplateGenerator`).
REPLY_TASK = "review_reply"
#: Longer review texts are cut to this many characters before grounding a reply.
MAX_REVIEW_CHARS = 2000
#: At most this many policy passages ground one reply.
MAX_POLICY_PASSAGES = 2

_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_RE = re.compile(r"[\u3040-\u30ff]")
_HANGUL_RE = re.compile(r"[\uac00-\ud7af]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")

# Cues of what a complaint is about (English stems / Chinese words); a topic picks the policy
# passages a reply may quote. Order matters only for the order of the topics returned.
_TOPIC_CUES: dict[str, tuple[str, ...]] = {
    "quality": (
        r"\bbr(?:oke|oken|eaks?)\b",
        r"stopped working",
        r"(?:does not|doesn't|did not|didn't|not) work",
        r"\bdefect",
        r"\bfaulty\b",
        r"\bdamaged?\b",
        r"poor quality",
        r"\bdied\b",
        r"\bcrack",
        r"\bleak",
        r"坏了",
        r"质量(?:太|很|真|特别)?(?:差|不好|一般|问题)",
        r"破损",
        r"故障",
        r"不能用",
        r"裂",
        r"瑕疵",
        r"漏",
        r"掉色",
    ),
    "return": (r"\breturn(?:ed|ing)? (?:it|this|them|the)\b", r"\brefund", r"money back", r"退货", r"退款", r"退钱"),
    "price": (r"\bexpensive\b", r"overpriced", r"not worth", r"price (?:drop|went down)", r"贵", r"不值", r"降价"),
    "shipping": (
        r"\blate\b",
        r"\bslow\b",
        r"never (?:arrived|came)",
        r"still waiting",
        r"\bdelay",
        r"took (?:\d+|two|three|four) weeks",
        r"慢",
        r"没收到",
        r"延迟",
        r"等了",
        r"迟迟",
    ),
    "size": (
        r"too (?:small|large|big|tight|loose)",
        r"does(?:n't| not) fit",
        r"wrong size",
        r"偏大",
        r"偏小",
        r"不合身",
    ),
    "service": (r"customer service was", r"\brude\b", r"no reply", r"ignored", r"客服态度差", r"没人理", r"态度差"),
}
_TOPIC_RES = {topic: re.compile("|".join(cues), re.IGNORECASE) for topic, cues in _TOPIC_CUES.items()}

# What to look up in the shop's policies for each topic, per reply language. Service
# complaints have no policy remedy: the reply apologises and gives the way to reach us.
_POLICY_QUERIES: dict[str, tuple[str, str]] = {
    "quality": ("faulty or damaged item: return or exchange", "质量问题 退换"),
    "return": ("refund for a returned item", "退款 退货"),
    "price": ("price protection: refund the difference when the price drops", "价格保护 降价 退差价"),
    "shipping": ("standard delivery time in business days", "普通快递 送达 工作日"),
    "size": ("no-reason returns of unused items", "无理由退货 未使用"),
}
_NEGATIVE_CUES = re.compile(
    r"\b(?:bad|terrible|awful|poor|disappoint\w*|worst|useless|waste|horrible)\b|差|失望|糟糕|垃圾|后悔|不满意",
    re.IGNORECASE,
)
_POSITIVE_CUES = re.compile(
    r"\b(?:great|love|excellent|perfect|amazing|good|happy|recommend\w*)\b|好评|满意|喜欢|不错|推荐|值得",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ReviewToReply:
    """A stored review and what the store knows around it.

    Args:
        review_id: the review's id.
        text: what the customer wrote (may be empty, HTML, emoji, any language, any length).
        rating: 1-5 stars, or None.
        language: the language stored with the review ("" when unknown); the text decides when
            its script is clear.
        item_title: the reviewed item's title ("" when unknown).
        order: the order's facts by name (``order_id``, ``status``, ``order_date``, ``amount``),
            or None when the store cannot tell which order the review is about.
        polarity: a stored sentiment (positive/neutral/negative) used when there is no rating.
    """

    review_id: str
    text: str
    rating: int | None = None
    language: str = ""
    item_title: str = ""
    order: Mapping[str, str] | None = None
    polarity: str | None = None


@dataclass(frozen=True)
class PreparedReview:
    """A review read for replying: cleaned text, languages, tone, complaint topics, notes."""

    text: str
    review_language: str
    reply_language: str
    tone: str
    topics: list[str]
    notes: list[str]
    skipped: str | None = None


@dataclass
class ReplyDraft:
    """A drafted reply and its check. See the module docstring for ``outcome`` and ``faithful``.

    ``outcome`` is one of ``faithful`` (the backend's draft passed), ``replaced`` (it did not;
    ``draft`` is the template's), ``fallback`` (the backend failed; the template answered),
    ``flagged`` (a template draft failed the check, which would be a bug: returned as it is,
    flagged) and ``skipped`` (nothing to reply to; ``draft`` is None).
    """

    review_id: str
    language: str
    review_language: str
    draft: str | None
    backend: str
    faithful: bool
    unsupported: list[str]
    grounding: list[Fact]
    outcome: str
    rejected_draft: str | None = None
    reason: str | None = None
    tone: str = "neutral"
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (facts as ``{"key", "value", "source"}``)."""
        return {
            "review_id": self.review_id,
            "language": self.language,
            "review_language": self.review_language,
            "draft": self.draft,
            "backend": self.backend,
            "faithful": self.faithful,
            "unsupported": list(self.unsupported),
            "grounding": [{"key": f.key, "value": f.value, "source": f.source} for f in self.grounding],
            "outcome": self.outcome,
            "rejected_draft": self.rejected_draft,
            "reason": self.reason,
            "tone": self.tone,
            "notes": list(self.notes),
            "skipped": self.skipped,
        }


def clean_review_text(text: str, *, max_chars: int = MAX_REVIEW_CHARS) -> tuple[str, list[str]]:
    """The review's plain text (tags removed, entities decoded, whitespace collapsed, cut to ``max_chars``).

    Args:
        text: the stored review text.
        max_chars: the longest text kept.

    Returns:
        The text and notes of what was done (``html``, ``truncated:<original length>``).

    Example:
        >>> clean_review_text("<p>Great &amp; cheap 👍</p>")
        ('Great & cheap 👍', ['html'])
    """
    notes = []
    if "<" in text and _TAG_RE.search(text):
        text = _TAG_RE.sub(" ", text)
        notes.append("html")
    text = " ".join(html.unescape(text).split())
    if len(text) > max_chars:
        notes.append(f"truncated:{len(text)}")
        text = text[:max_chars].rstrip() + "…"
    return text, notes


def detect_review_language(text: str, declared: str = "") -> str:
    """``zh``, ``en``, another code, or ``und``: the script decides, else the stored language, else English.

    Chinese characters (without Japanese kana) make ``zh``; kana ``ja``; Hangul ``ko``; other
    non-Latin scripts ``und``. Latin text keeps a declared language (``fr`` stays ``fr``) and is
    ``en`` when none is stored. Emoji and digits do not count.

    Example:
        >>> detect_review_language("质量很好"), detect_review_language("Très bien", "fr"), detect_review_language("👍")
        ('zh', 'fr', 'und')
    """
    declared_code = normalize_language(declared) if declared.strip() else ""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return declared_code or "und"
    n = len(letters)
    joined = "".join(letters)
    if _KANA_RE.search(joined):
        return "ja"
    if len(_HANGUL_RE.findall(joined)) / n > 0.3:
        return "ko"
    if len(_CJK_RE.findall(joined)) / n > 0.3:
        return "zh"
    if len(_LATIN_RE.findall(joined)) / n > 0.5:
        return declared_code if declared_code and declared_code != "zh" else "en"
    return "und"


def complaint_topics(text: str) -> list[str]:
    """What a review complains about (quality, return, price, shipping, size, service), by cue words.

    Example:
        >>> complaint_topics("物流太慢了，而且用了一周就坏了")
        ['quality', 'shipping']
    """
    return [topic for topic, pattern in _TOPIC_RES.items() if pattern.search(text)]


def review_tone(rating: int | None, text: str = "", polarity: str | None = None) -> str:
    """``negative`` (1-2 stars), ``neutral`` (3), ``positive`` (4-5); without a rating the stored
    polarity, else cue words of the text, else ``neutral``.

    Example:
        >>> review_tone(2), review_tone(None, "Terrible, it broke"), review_tone(None, "")
        ('negative', 'negative', 'neutral')
    """
    if rating is not None:
        return "negative" if rating <= 2 else "neutral" if rating == 3 else "positive"
    if polarity in {"positive", "neutral", "negative"}:
        return polarity
    negative, positive = bool(_NEGATIVE_CUES.search(text)), bool(_POSITIVE_CUES.search(text))
    if negative != positive:
        return "negative" if negative else "positive"
    return "neutral"


def prepare_review(review: ReviewToReply) -> PreparedReview:
    """The review cleaned and read: languages, tone, topics, notes; ``skipped`` when there is nothing to answer.

    Example:
        >>> prepare_review(ReviewToReply("R1", "   ")).skipped
        'empty'
        >>> p = prepare_review(ReviewToReply("R2", "Sehr gut!", rating=5, language="de"))
        >>> p.reply_language, p.notes
        ('en', ['unsupported_language:de'])
    """
    text, notes = clean_review_text(review.text or "")
    review_language = detect_review_language(text, review.language)
    reply_language = review_language if review_language in {"zh", "en"} else "en"
    if review_language not in {"zh", "en"}:
        notes.append(f"unsupported_language:{review_language}")
    if not text:
        if review.rating is None:
            return PreparedReview("", review_language, reply_language, "neutral", [], notes, skipped="empty")
        notes.append("empty_text")
    tone = review_tone(review.rating, text, review.polarity)
    topics = complaint_topics(text) if tone != "positive" else []
    return PreparedReview(text, review_language, reply_language, tone, topics, notes)


def policy_queries(prepared: PreparedReview) -> list[str]:
    """What to look up in the shop's policies for this reply, in the reply's language.

    Positive reviews need no policy. A negative review with no recognised topic gets the
    faulty-item remedy, the commonest cause of a bad review.

    Example:
        >>> policy_queries(prepare_review(ReviewToReply("R1", "用了一周就坏了", rating=1)))
        ['质量问题 退换']
    """
    if prepared.skipped or prepared.tone == "positive":
        return []
    topics = [t for t in prepared.topics if t in _POLICY_QUERIES]
    if not topics and prepared.tone == "negative":
        topics = ["quality"]
    zh = prepared.reply_language == "zh"
    return [_POLICY_QUERIES[t][1] if zh else _POLICY_QUERIES[t][0] for t in topics[:MAX_POLICY_PASSAGES]]


def reply_grounding(review: ReviewToReply, prepared: PreparedReview, policies: Sequence[Fact]) -> list[Fact]:
    """Everything a reply to ``review`` may say, as facts.

    Args:
        review: the review and its context.
        prepared: :func:`prepare_review` of it.
        policies: the policy passages found for it (key ``policy``); at most
            :data:`MAX_POLICY_PASSAGES` are kept, duplicates dropped.

    Returns:
        The facts: tone, rating, review_text (the customer's words), product, the order's
        facts, policies.

    Example:
        >>> r = ReviewToReply("R1", "Broke after a week", rating=1, item_title="Lamp", order={"order_id": "O1"})
        >>> [f.key for f in reply_grounding(r, prepare_review(r), [Fact("policy", "We repair.", "warranty.md")])]
        ['tone', 'rating', 'review_text', 'product', 'order_id', 'policy']
    """
    source = f"reviews:{review.review_id}"
    facts = [Fact("tone", prepared.tone, source)]
    if review.rating is not None:
        facts.append(Fact("rating", f"{int(review.rating)}/5", source))
    if prepared.text:
        facts.append(Fact("review_text", prepared.text, source))
    if review.item_title.strip():
        facts.append(Fact("product", review.item_title.strip(), f"items:{source}"))
    if review.order:
        order_source = f"orders:{review.order.get('order_id', '')}"
        for key in ("order_id", "status", "order_date", "amount"):
            value = str(review.order.get(key) or "").strip()
            if value:
                facts.append(Fact(key, value, order_source))
    if prepared.tone != "positive":
        seen: set[str] = set()
        for fact in policies:
            if fact.value.strip() and fact.value not in seen and len(seen) < MAX_POLICY_PASSAGES:
                seen.add(fact.value)
                facts.append(Fact("policy", fact.value, fact.source))
    return facts


def language_matches(text: str, language: str) -> bool:
    """Whether ``text`` reads as ``language`` (``zh``: Chinese characters dominate its letters; else not).

    Example:
        >>> language_matches("感谢您的好评！", "zh"), language_matches("Thank you!", "zh")
        (True, False)
    """
    detected = detect_review_language(text)
    return detected == "zh" if normalize_language(language) == "zh" else detected != "zh"


def draft_review_reply(
    review: ReviewToReply,
    policies: Sequence[Fact],
    generator: TextGenerator,
    *,
    template: TextGenerator | None = None,
) -> ReplyDraft:
    """Draft a reply to ``review`` with ``generator``, check it, and replace an unfaithful model draft.

    Args:
        review: the review and its context.
        policies: policy passages as facts (see :func:`policy_queries` for what to look up).
        generator: the configured backend (template, OpenAI-compatible, GGUF, or a fallback chain).
        template: the generator that replaces an unfaithful draft (default: templates).

    Returns:
        The :class:`ReplyDraft` (see its ``outcome``).

    Example:
        >>> from shoplm.lm import TemplateGenerator
        >>> r = ReviewToReply("R1", "用了一周就坏了", rating=1, language="zh", item_title="台灯")
        >>> policy = Fact("policy", "质量问题：签收后30天内可退换，运费由我们承担。", "returns.md")
        >>> draft_review_reply(r, [policy], TemplateGenerator()).draft
        '非常抱歉台灯给您带来了不好的体验。根据我们的政策：质量问题：签收后30天内可退换，运费由我们承担。如需帮助，请联系客服，我们会尽快为您处理。'
    """
    prepared = prepare_review(review)
    if prepared.skipped:
        return ReplyDraft(
            review.review_id,
            prepared.reply_language,
            prepared.review_language,
            None,
            generator.name,
            True,
            [],
            [],
            "skipped",
            reason=f"nothing to reply to ({prepared.skipped})",
            tone=prepared.tone,
            notes=prepared.notes,
            skipped=prepared.skipped,
        )
    grounding = reply_grounding(review, prepared, policies)
    language = prepared.reply_language
    generation = generator.generate(REPLY_TASK, grounding, language=language)
    report = check_faithfulness(generation.text, grounding)
    in_language = language_matches(generation.text, language)
    result = ReplyDraft(
        review.review_id,
        language,
        prepared.review_language,
        generation.text,
        generation.generator,
        report.ok,
        list(report.unsupported),
        grounding,
        "faithful",
        tone=prepared.tone,
        notes=prepared.notes,
    )
    if generation.fallback_reason:
        result.outcome, result.reason = "fallback", generation.fallback_reason
    if report.ok and in_language:
        return result
    templates = template if template is not None else TemplateGenerator()
    if generation.generator == templates.name:
        result.outcome = "flagged"
        result.reason = "the template draft failed the check: " + ", ".join(report.unsupported or ["language"])
        return result
    replacement = templates.generate(REPLY_TASK, grounding, language=language)
    why = f"unsupported claims: {', '.join(report.unsupported)}" if not report.ok else f"not written in {language}"
    result.rejected_draft, result.draft, result.backend = generation.text, replacement.text, replacement.generator
    result.outcome, result.reason = "replaced", f"{generation.generator} draft replaced by the template ({why})"
    return result
