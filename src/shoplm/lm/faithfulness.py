"""Faithfulness of generated text to its grounding: no amount, date, period or id that the facts lack.

A generator (template, OpenAI-compatible endpoint, local GGUF) phrases a reply from
:class:`~shoplm.lm.Fact` objects. :func:`check_faithfulness` finds the checkable claims in the
reply — money amounts, dates, periods and policy numbers ("3-5 business days", "7天", "30%"),
order ids — and reports each one whose numbers or id do not occur in the facts. It does not
judge wording or tone; it catches the failure that costs a shop money: a promised refund, date
or policy the shop never stated.

Example:
    >>> facts = [Fact("amount", "¥199.00", "orders:O1"), Fact("policy", "Refunds take 3-5 business days.", "p")]
    >>> check_faithfulness("We refunded ¥199.00; expect it within 3-5 business days.", facts).ok
    True
    >>> check_faithfulness("We refunded ¥250.00 within 24 hours.", facts).unsupported
    ['¥250.00', '24 hours']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoplm.lm.generator import Fact

__all__ = ["FaithfulnessReport", "check_faithfulness", "claims"]

_NUM = r"\d+(?:[.,]\d+)*"
_CLAIM_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\d{4}年\d{1,2}月\d{1,2}日|\d{1,2}月\d{1,2}日")),
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
    """
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, str, str]] = []
    for kind, pattern in _CLAIM_PATTERNS:
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
    """Whether every amount, date, period, percentage and order id in ``text`` is in ``facts``.

    Args:
        text: the generated reply.
        facts: the grounding it was generated from (facts, or plain strings such as policy passages).

    Returns:
        The report: the claims found, and those whose numbers (or id, or date) the facts lack.
    """
    grounding = " ".join(f.value if isinstance(f, Fact) else str(f) for f in facts)
    numbers = _numbers(grounding)
    dates = {_date_key(m.group(0)) for m in _CLAIM_PATTERNS[0][1].finditer(grounding)}
    found = claims(text)
    unsupported = []
    for kind, span in found:
        if kind == "order_id":
            supported = span in grounding
        elif kind == "date":
            key = _date_key(span)
            supported = key in dates or any(d[-len(key) :] == key for d in dates)
        else:
            supported = _numbers(span) <= numbers
        if not supported:
            unsupported.append(span)
    return FaithfulnessReport(not unsupported, [span for _, span in found], unsupported)
