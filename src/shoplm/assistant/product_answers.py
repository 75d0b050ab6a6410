"""Answers about one catalog item from its fields, and the price band of a shopping request.

:func:`answer_fields` finds the fields of an item that answer a question: the attribute a
question asks about ("what material", "什么材质" -> ``attributes.material``), the price, stock
or brand column, or the sentence of the description that shares the question's words ("does it
come with an HDMI cable" -> the description sentence that mentions HDMI). Each answer names
its field, so the reply can cite it (``items:I001#attributes.material``). No model: the
catalog's own words decide, so nothing is invented.

:func:`price_band` reads "under 50", "between 100 and 200", "50元以内", "100-200块" from a
request.

Example:
    >>> row = {"title": "Kettle", "description": "1.7 L kettle. Stainless steel inside, BPA free.",
    ...        "attributes": '{"material": "Stainless steel", "color": "Black"}', "price": 199.0}
    >>> [(a.field, a.value) for a in answer_fields("what colour is it?", row)]
    [('attributes.color', 'Black')]
    >>> price_band("a gift under 50"), price_band("100-200块的耳机")
    ((None, 50.0), (100.0, 200.0))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Topics a product question asks about, with the words (English and Chinese) that name them.
TOPICS: dict[str, tuple[str, ...]] = {
    "material": (
        "material",
        "made of",
        "fabric",
        "stainless",
        "steel",
        "leather",
        "cotton",
        "plastic",
        "wood",
        "metal",
        "材质",
        "材料",
        "面料",
        "不锈钢",
        "纯棉",
        "真皮",
        "什么做的",
    ),
    "size": ("size", "sizes", "dimension", "how big", "length", "width", "fit", "尺码", "尺寸", "大小", "多大", "几码"),
    "color": ("color", "colour", "颜色", "什么色"),
    "battery": ("battery", "charge", "charging", "续航", "电池", "充电"),
    "capacity": ("capacity", "litre", "liter", "容量", "毫升", "多少升"),
    "weight": ("weight", "heavy", "weigh", "重量", "多重"),
    "price": ("price", "cost", "how much", "多少钱", "价格", "价钱", "几块"),
    "stock": (
        "in stock",
        "available",
        "stock",
        "sold out",
        "restock",
        "有货",
        "库存",
        "现货",
        "缺货",
        "补货",
        "还有吗",
    ),
    "brand": ("brand", "who makes", "made by", "品牌", "牌子"),
}
#: Columns that answer a topic directly (the others live in ``attributes`` or the description).
COLUMN_TOPICS = {"price": "price", "stock": "stock", "brand": "brand"}

_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "is",
        "are",
        "does",
        "do",
        "did",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "with",
        "for",
        "of",
        "in",
        "on",
        "to",
        "and",
        "or",
        "can",
        "could",
        "will",
        "would",
        "you",
        "your",
        "my",
        "me",
        "i",
        "we",
        "have",
        "has",
        "what",
        "which",
        "how",
        "much",
        "many",
        "any",
        "come",
        "comes",
        "inside",
        "there",
        "be",
    ]
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？；;])\s*")
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class FieldAnswer:
    """One field of an item that answers the question: ``attributes.material``, ``price``, ``description``."""

    field: str
    value: str
    score: float


def _attributes(row: Mapping[str, Any]) -> dict[str, str]:
    raw = row.get("attributes")
    if isinstance(raw, Mapping):
        data: Any = raw
    else:
        try:
            data = json.loads(str(raw or "{}"))
        except json.JSONDecodeError:
            return {}
    if not isinstance(data, Mapping):
        return {}
    return {str(k): str(v) for k, v in data.items() if str(v).strip() and str(v) != "nan"}


def question_topics(question: str) -> list[str]:
    """The topics a question names, in :data:`TOPICS` order."""
    lowered = question.lower()
    return [topic for topic, words in TOPICS.items() if any(_has_word(lowered, w) for w in words)]


def _has_word(lowered: str, word: str) -> bool:
    if _CJK.search(word):
        return word in lowered
    return re.search(r"\b" + re.escape(word) + r"\b", lowered) is not None


def _terms(text: str) -> set[str]:
    """Content words (English) and character bigrams (Chinese) of a text."""
    lowered = text.lower()
    terms = {w for w in _WORD.findall(lowered) if len(w) > 2 and w not in _STOPWORDS}
    for run in _CJK.findall(lowered):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    return terms


def answer_fields(question: str, row: Mapping[str, Any], *, limit: int = 2) -> list[FieldAnswer]:
    """The fields of ``row`` that answer ``question``, best first (empty: none does).

    Args:
        question: the customer's message.
        row: the item's catalog row (``title``, ``description``, ``attributes`` JSON, ``price``, ...).
        limit: answers returned at most.

    Returns:
        Field answers: an attribute or column the question's topic names first, then description
        sentences sharing the question's words.
    """
    answers: list[FieldAnswer] = []
    attributes = _attributes(row)
    topics = question_topics(question)
    for topic in topics:
        if topic in COLUMN_TOPICS:
            continue  # price, stock and brand are stated by the caller from the columns
        for key, value in attributes.items():
            if key.lower() == topic or key.lower() in TOPICS[topic]:
                answers.append(FieldAnswer(f"attributes.{key}", value, 2.0))
    wanted = _terms(question) - _terms(str(row.get("title") or ""))
    description = " ".join(str(row.get("description") or "").split())
    if wanted and description:
        for sentence in (s for s in _SENTENCE_SPLIT.split(description) if s.strip()):
            shared = wanted & _terms(sentence)
            topic_hit = any(_has_word(sentence.lower(), w) for t in topics for w in TOPICS[t])
            score = len(shared) / len(wanted) + (0.5 if topic_hit else 0.0)
            if shared or topic_hit:
                answers.append(FieldAnswer("description", sentence.strip(), score))
    answers.sort(key=lambda a: -a.score)
    seen: set[str] = set()
    unique = []
    for answer in answers:
        if answer.value not in seen:
            seen.add(answer.value)
            unique.append(answer)
    return unique[:limit]


_NUMBER = r"(\d+(?:\.\d+)?)"
_CURRENCY = r"\s*(?:元|块钱|块|rmb|cny|yuan|dollars?|usd|¥|\$|￥)?"
_BETWEEN = re.compile(
    r"(?:between\s*[¥$￥]?\s*" + _NUMBER + _CURRENCY + r"\s*(?:and|-|to)\s*[¥$￥]?\s*" + _NUMBER + r")"
    r"|(?:[¥$￥]?\s*" + _NUMBER + _CURRENCY + r"\s*(?:-|~|～|到|至|to)\s*[¥$￥]?\s*" + _NUMBER + _CURRENCY + r")",
    re.IGNORECASE,
)
_UNDER = re.compile(
    r"(?:under|below|less than|cheaper than|no more than|at most|max(?:imum)?|within|up to|<)\s*[¥$￥]?\s*"
    + _NUMBER
    + r"|(?:不超过|低于|少于|小于)\s*[¥$￥]?\s*"
    + _NUMBER
    + r"|[¥$￥]?\s*"
    + _NUMBER
    + _CURRENCY
    + r"\s*(?:以内|以下|之内|内|or less|and under|max)",
    re.IGNORECASE,
)
_OVER = re.compile(
    r"(?:over|above|more than|at least|from)\s*[¥$￥]?\s*"
    + _NUMBER
    + r"|(?:超过|高于|大于)\s*[¥$￥]?\s*"
    + _NUMBER
    + r"|[¥$￥]?\s*"
    + _NUMBER
    + _CURRENCY
    + r"\s*(?:以上|起|or more|and up|plus)",
    re.IGNORECASE,
)

_BUDGET = re.compile(r"(?:budget(?: is| of)?|预算(?:是|为)?)\s*[¥$￥]?\s*" + _NUMBER, re.IGNORECASE)
_AROUND = re.compile(
    r"(?:around|about|roughly|approximately|~)\s*[¥$￥]?\s*"
    + _NUMBER
    + r"|[¥$￥]?\s*"
    + _NUMBER
    + _CURRENCY
    + r"\s*(?:左右|上下)",
    re.IGNORECASE,
)


def price_band(text: str) -> tuple[float | None, float | None]:
    """(min price, max price) named in a request; (None, None) when it names none.

    Example:
        >>> price_band("something between 100 and 300 yuan"), price_band("300元以上的手表")
        ((100.0, 300.0), (300.0, None))
    """
    if match := _BETWEEN.search(text):
        numbers = [float(g) for g in match.groups() if g is not None]
        if len(numbers) == 2:
            low, high = sorted(numbers)
            return low, high
    low = high = None
    if match := _UNDER.search(text):
        high = float(next(g for g in match.groups() if g is not None))
    if match := _OVER.search(text):
        low = float(next(g for g in match.groups() if g is not None))
    if low is not None and high is not None and low > high:
        low = None
    if low is None and high is None and (match := _AROUND.search(text)):
        # "around 200": a fifth either side
        value = float(next(g for g in match.groups() if g is not None))
        return round(value * 0.8, 2), round(value * 1.2, 2)
    if high is None and (match := _BUDGET.search(text)):
        high = float(match.group(1))
    return low, high
