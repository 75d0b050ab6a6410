"""A light, bilingual anger / frustration detector for customer messages.

A lexicon of angry and frustrated words and phrases (English and Chinese) plus typographic cues
(``!!!``, ``???``, shouting in capitals). Optionally a trained sentiment :class:`TextClassifier`
(the assistant's, trained on ``assistant/data/sentiment.csv``) adds a point when it is sure the
message is negative: the lexicon alone is deterministic and fast (no model call), the model
catches unhappiness said without any angry word.

Example:
    >>> detect_emotion("This is RIDICULOUS!!! Where is my order???").label
    'angry'
    >>> detect_emotion("谢谢，帮我查一下订单").label
    'neutral'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoplm.lm.classify.classifier import TextClassifier

# weight 2: anger on its own; weight 1: frustration (anger together with another cue)
_EN_WORDS: dict[str, int] = {
    "angry": 2,
    "furious": 2,
    "outraged": 2,
    "ridiculous": 2,
    "unacceptable": 2,
    "scam": 2,
    "fraud": 2,
    "useless": 2,
    "worst": 2,
    "pathetic": 2,
    "disgusting": 2,
    "wtf": 2,
    "damn": 2,
    "hell": 1,
    "hate": 2,
    "stupid": 2,
    "idiot": 2,
    "idiots": 2,
    "incompetent": 2,
    "terrible": 1,
    "awful": 1,
    "horrible": 1,
    "annoyed": 1,
    "annoying": 1,
    "frustrated": 1,
    "frustrating": 1,
    "disappointed": 1,
    "lawyer": 2,
    "sue": 2,
    "joke": 1,
    "nonsense": 1,
    "rubbish": 1,
    "garbage": 2,
    "crap": 2,
    "shit": 2,
    "fed": 0,
    "again": 0,
}
_EN_PHRASES: dict[str, int] = {
    "fed up": 2,
    "sick of": 2,
    "sick and tired": 2,
    "what the hell": 2,
    "never again": 2,
    "are you kidding": 2,
    "this is a joke": 2,
    "waste of time": 2,
    "still not": 1,
    "third time": 1,
    "how many times": 2,
    "nobody helps": 1,
    "no one helps": 1,
    "report you": 2,
}
_ZH_PHRASES: dict[str, int] = {
    "生气": 2,
    "气死": 2,
    "愤怒": 2,
    "垃圾": 2,
    "骗子": 2,
    "骗人": 2,
    "太差": 1,
    "差劲": 2,
    "无语": 1,
    "受够了": 2,
    "什么破": 2,
    "搞什么": 2,
    "太过分": 2,
    "过分": 1,
    "恶心": 2,
    "坑人": 2,
    "混蛋": 2,
    "滚": 2,
    "废物": 2,
    "投诉你们": 2,
    "曝光": 2,
    "举报": 2,
    "退钱": 1,
    "失望": 1,
    "烦死": 2,
    "烦": 1,
    "到底": 1,
    "还没": 0,
    "几次了": 2,
    "多少次": 2,
    "不像话": 2,
    "离谱": 2,
    "忍无可忍": 2,
    "太慢了": 1,
    "黑店": 2,
}
_WORD_RE = re.compile(r"[A-Za-z']+")

#: the label of the negative class in the assistant's sentiment models (``shoplm train assistant``
#: renames a shop's own negative label to it)
NEGATIVE = "negative"


@dataclass(frozen=True)
class Sentiment:
    """A sentiment model's reading of one message: its top ``label`` and the calibrated P(negative).

    Example:
        >>> Sentiment("negative", 0.97).negative
        0.97
    """

    label: str
    negative: float


@dataclass(frozen=True)
class Emotion:
    """``label`` is ``"angry"``, ``"frustrated"`` or ``"neutral"``; ``score`` sums the cues found.

    ``sentiment`` is the model's reading when a sentiment model was used.
    """

    label: str
    score: float
    cues: list[str] = field(default_factory=list)
    sentiment: Sentiment | None = None

    @property
    def angry(self) -> bool:
        return self.label == "angry"


def read_sentiment(classifier: TextClassifier, text: str, *, negative_label: object = NEGATIVE) -> Sentiment:
    """``classifier``'s top label for ``text`` and its probability of ``negative_label`` (0 if unknown).

    Example:
        >>> read_sentiment(sentiment_model, "nobody has answered my emails")  # doctest: +SKIP
        Sentiment(label='negative', negative=0.99)
    """
    proba = classifier.predict_proba([text])[0]
    labels = classifier.labels
    negative = float(proba[labels.index(negative_label)]) if negative_label in labels else 0.0
    return Sentiment(str(labels[int(proba.argmax())]), negative)


def detect_emotion(
    text: str,
    *,
    classifier: TextClassifier | None = None,
    negative_label: object = NEGATIVE,
    sentiment: Sentiment | None = None,
    threshold: float = 3.0,
    sentiment_threshold: float = 0.9,
) -> Emotion:
    """Anger/frustration of one message: ``angry`` at ``threshold`` points, ``frustrated`` at 1.

    A sentiment reading adds 1 point when its P(negative) is at least ``sentiment_threshold``:
    pass it as ``sentiment`` (already computed, e.g. from the turn's embedding), or pass
    ``classifier`` (a sentiment model) and ``negative_label`` to have it read here. A failing
    model is ignored: the lexicon still answers.

    Example:
        >>> detect_emotion("I am fed up, this is the third time!!").label
        'angry'
        >>> detect_emotion("nobody told me anything", sentiment=Sentiment("negative", 0.98)).label
        'frustrated'
    """
    cues: list[str] = []
    score = 0.0
    lowered = text.lower()
    words = _WORD_RE.findall(lowered)
    for word in words:
        weight = _EN_WORDS.get(word, 0)
        if weight:
            score += weight
            cues.append(word)
    for phrase, weight in (*_EN_PHRASES.items(), *_ZH_PHRASES.items()):
        if weight and phrase in lowered:
            score += weight
            cues.append(phrase)
    exclaims = len(re.findall(r"[!！]", text))
    if re.search(r"[!！]{2,}", text) or exclaims >= 3:
        score += 1
        cues.append("!!")
    if re.search(r"[?？]{3,}", text) or re.search(r"[?？][!！]|[!！][?？]", text):
        score += 1
        cues.append("?!")
    letters = [c for c in text if c.isascii() and c.isalpha()]
    shouted = [w for w in _WORD_RE.findall(text) if len(w) >= 3 and w.isupper() and w not in {"USD", "CNY", "RMB"}]
    if (len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= 0.6) or len(shouted) >= 2:
        score += 1
        cues.append("CAPS")
    if sentiment is None and classifier is not None and text.strip():
        try:
            sentiment = read_sentiment(classifier, text, negative_label=negative_label)
        except Exception:  # an auxiliary signal: a broken model must not stop the lexicon check
            sentiment = None
    if sentiment is not None and sentiment.negative >= sentiment_threshold:
        score += 1
        cues.append("negative-sentiment")
    label = "angry" if score >= threshold else "frustrated" if score >= 1 else "neutral"
    return Emotion(label, score, cues, sentiment)
