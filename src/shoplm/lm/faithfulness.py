"""Faithfulness of generated text to its grounding: no amount, date, period or id that the facts lack.

A generator (template, OpenAI-compatible endpoint, local GGUF) phrases a reply from
:class:`~shoplm.lm.Fact` objects. :func:`check_faithfulness` finds the checkable claims in the
reply — money amounts, dates, periods and policy numbers ("3-5 business days", "7天", "30%"),
order ids — and reports each one whose numbers or id do not occur in the facts. It also finds
policy promises ("free return", "full refund", "compensation", "免费退货", "包退换", "赔偿",
"换新", ...; see :data:`POLICY_PROMISES`) and reports each one whose kind of remedy no
shop-side fact states. It does not judge wording or tone; it catches the failure that costs a
shop money: a promised refund, date or policy the shop never stated.

A policy promise is grounded only by the shop's side of the grounding: fact values and keys
(``refund_amount`` grounds "refund"), and plain strings, but never facts under
:data:`CUSTOMER_TEXT_KEYS` — a review that says "I want a full refund" does not let the reply
promise one. Negations are not parsed: "we cannot offer compensation" is flagged like a
promise when no policy mentions compensation (a reply should not raise it then either).

Example:
    >>> facts = [Fact("amount", "¥199.00", "orders:O1"), Fact("policy", "Refunds take 3-5 business days.", "p")]
    >>> check_faithfulness("We refunded ¥199.00; expect it within 3-5 business days.", facts).ok
    True
    >>> check_faithfulness("We refunded ¥250.00 within 24 hours.", facts).unsupported
    ['¥250.00', '24 hours']
    >>> check_faithfulness("Sorry! We offer a free return and 赔偿.", facts).unsupported
    ['free return', '赔偿']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoplm.lm.generator import Fact

__all__ = ["CUSTOMER_TEXT_KEYS", "POLICY_PROMISES", "FaithfulnessReport", "check_faithfulness", "claims"]

_NUM = r"\d+(?:[.,]\d+)*"
_CLAIM_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(r"(?<!\d)\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|\d{4}年\d{1,2}月\d{1,2}日|\d{1,2}月\d{1,2}日")),
    (
        "amount",
        re.compile(
            r"(?:[¥￥$€£]|US\$|USD|CNY|RMB)\s?"
            + _NUM
            + r"|"
            + _NUM
            + r"\s?(?:元|块|yuan|dollars?|USD|CNY|RMB|EUR|GBP)",
            re.IGNORECASE,
        ),
    ),
    (
        "period",
        re.compile(
            _NUM + r"(?:\s?[-–~至到]\s?" + _NUM + r")?\s?(?:business |working |calendar )?"
            r"(?:days?|hours?|weeks?|months?|years?|minutes?|个工作日|工作日|天|小时|周|个月|年|分钟)",
            re.IGNORECASE,
        ),
    ),
    ("percent", re.compile(_NUM + r"\s?%|百分之\d+")),
    ("order_id", re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,3}-?\d{4,14}(?![A-Za-z0-9])")),
]

#: Kinds of remedy a reply may promise, each with the phrases (English, Chinese) that name it.
#: A promise is supported when the shop's grounding names the same kind, in either language.
#: More specific kinds come first: "full refund" is one claim, not also a "refund".
POLICY_PROMISES: dict[str, tuple[str, ...]] = {
    "full_refund": (r"full refunds?", r"refunds? in full", r"100\s?% refunds?", r"全额退款", r"全款退"),
    "free_return": (
        r"free(?: of charge)? returns?",
        r"free return shipping",
        r"returns? (?:are|is) free",
        r"return(?:ed)? (?:for|at no) (?:free|cost|charge)",
        r"we (?:pay|cover) (?:the )?(?:return )?(?:shipping|postage)",
        r"免费退货",
        r"包退",
        r"运费由我们承担",
        r"运费险",
    ),
    "free_shipping": (r"free (?:shipping|delivery)", r"ships? (?:for )?free", r"包邮", r"免运费", r"免邮"),
    "price_protection": (
        r"price (?:protection|match(?:ing)?|difference)",
        r"refund (?:you )?the difference",
        r"退差价",
        r"补差价",
        r"价格保护",
    ),
    "refund": (r"refund\w*", r"money back", r"reimburse\w*", r"退款", r"退钱", r"返现"),
    "replacement": (r"replace\w*", r"exchang\w*", r"换新", r"换货", r"包换", r"退换", r"更换", r"补发"),
    "compensation": (r"compensat\w*", r"赔偿", r"补偿", r"赔付"),
    "coupon": (r"coupons?", r"vouchers?", r"gift cards?", r"store credit", r"优惠券", r"代金券", r"红包", r"礼品卡"),
    "discount": (r"discount\w*", r"\boff your next", r"折扣", r"打折"),
    "warranty": (r"warrant(?:y|ies)", r"guarantee\w*", r"repair\w*", r"保修", r"质保", r"维修"),
    "no_questions": (r"no questions asked", r"no[- ]reason", r"无理由", r"无条件"),
    "lifetime": (r"lifetime", r"forever", r"终身", r"永久"),
}
_PROMISE_RES: dict[str, re.Pattern[str]] = {
    kind: re.compile(
        "|".join(p if not p[:1].isascii() or not p[:1].isalpha() else r"\b" + p for p in phrases), re.IGNORECASE
    )
    for kind, phrases in POLICY_PROMISES.items()
}
_ID_OR_DATE = re.compile(_CLAIM_PATTERNS[0][1].pattern + "|" + _CLAIM_PATTERNS[-1][1].pattern)
#: Fact keys holding the customer's own words: they never ground a policy promise.
CUSTOMER_TEXT_KEYS = frozenset({"review_text", "review", "customer_message", "message", "question", "complaint"})


@dataclass(frozen=True)
class FaithfulnessReport:
    """``ok`` when every claim is grounded; ``unsupported`` lists the claims that are not."""

    ok: bool
    claims: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def claims(text: str) -> list[tuple[str, str]]:
    """The checkable claims of ``text`` as (kind, span), in the text's order; a span is claimed once.

    Example:
        >>> claims("Order O0000123 ships in 2 days for $5")
        [('order_id', 'O0000123'), ('period', '2 days'), ('amount', '$5')]
        >>> claims("A full refund or 换新")
        [('policy:full_refund', 'full refund'), ('policy:replacement', '换新')]
    """
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, str, str]] = []
    patterns = [*_CLAIM_PATTERNS, *((f"policy:{kind}", pattern) for kind, pattern in _PROMISE_RES.items())]
    for kind, pattern in patterns:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue  # "2026-03-01" is a date, not three numbers
            taken.append((start, end))
            found.append((start, kind, match.group(0).strip()))
    return [(kind, span) for _, kind, span in sorted(found)]


def _numbers(text: str) -> set[float]:
    out = set()
    for raw in re.findall(_NUM, text):
        try:
            out.add(round(float(raw.replace(",", "")), 2))
        except ValueError:
            continue
    return out


def _date_key(span: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", span))


def check_faithfulness(text: str, facts: Sequence[Fact] | Sequence[str]) -> FaithfulnessReport:
    """Whether every amount, date, period, percentage, order id and policy promise in ``text`` is in ``facts``.

    Args:
        text: the generated reply.
        facts: the grounding it was generated from (facts, or plain strings such as policy passages).

    Returns:
        The report: the claims found, and those whose numbers (or id, or date, or kind of
        remedy) the facts lack.
    """
    grounding = " ".join(f.value if isinstance(f, Fact) else str(f) for f in facts)
    # What the shop says (values and keys, "refund_amount" -> "refund amount"), not the customer.
    shop_side = " ".join(
        f"{f.key.replace('_', ' ')} {f.value}" if isinstance(f, Fact) else str(f)
        for f in facts
        if not (isinstance(f, Fact) and f.key.strip().lower() in CUSTOMER_TEXT_KEYS)
    )
    # Dates and ids are claims of their own: "2026-06-10" or "O0000034" grounds no "6%" or "34 元".
    numbers = _numbers(_ID_OR_DATE.sub(" ", grounding))
    dates = {_date_key(m.group(0)) for m in _CLAIM_PATTERNS[0][1].finditer(grounding)}
    found = claims(text)
    unsupported = []
    for kind, span in found:
        if kind == "order_id":
            supported = span in grounding
        elif kind == "date":
            key = _date_key(span)
            supported = key in dates or any(d[-len(key) :] == key for d in dates)
        elif kind.startswith("policy:"):
            supported = _PROMISE_RES[kind.removeprefix("policy:")].search(shop_side) is not None
        else:
            supported = _numbers(span) <= numbers
        if not supported:
            unsupported.append(span)
    return FaithfulnessReport(not unsupported, [span for _, span in found], unsupported)
