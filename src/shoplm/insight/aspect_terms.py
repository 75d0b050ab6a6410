"""Review text for aspect extraction: sentences, clauses and candidate aspect terms.

Cleaning (HTML, truncation) and language detection are the review sentiment's
(:func:`shoplm.insight.sentiment.prepare_review`). Everything here is rule-based and
dependency-free (no tokenizer, tagger or segmenter), so it behaves the same everywhere and
costs microseconds:

- :func:`split_sentences` / :func:`split_clauses` cut at sentence and clause punctuation and
  contrast words (but, 但是 ...), keeping character offsets into the cleaned text;
- :func:`candidate_terms` finds aspect terms in a clause: first the category terms of the
  seed lexicon (longest match wins), then *open* terms. English open terms are short noun
  phrases found without a tagger: up to three content words after a determiner or possessive
  ("the remote control", "its battery life"), or at the start of a clause before a copula
  ("sound quality is superb"). Chinese open terms (no word segmenter is installed) are the
  2-6 characters before the clause's first degree adverb or opinion word ("屏幕很清晰" -> 屏幕),
  with leading fillers (我, 感觉, 这个 ...) removed.

Example:
    >>> clauses = split_clauses("the screen is bright , but the battery dies fast .", "en")
    >>> [c.text for c in clauses]
    ['the screen is bright', 'but the battery dies fast .']
    >>> [t.text for t in candidate_terms(clauses[1], "en", {"battery": "battery"})]
    ['battery']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Span", "Term", "candidate_terms", "split_clauses", "split_sentences"]


def _words(*chunks: str) -> frozenset[str]:
    return frozenset(" ".join(chunks).split())


#: English function words: never part of an aspect term
_EN_FUNCTION = _words(
    "a an the this that these those it its is are was were be been am has have had do does did not no n't",
    "and or but if so to of in on at for with from by as i you he she we they my your our their me us",
    "them very too just only also than then there here what which who how when all any some can could",
    "will would should don doesn didn isn wasn won't can't",
)


@dataclass(frozen=True)
class Span:
    """A piece of the cleaned review: its text and ``[start, end)`` character offsets."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Term:
    """A candidate aspect term: where it is and, for a lexicon term, its category."""

    text: str
    start: int
    end: int
    #: the seed lexicon's category of the term; ``None`` for an open term
    category: str | None = None


_SENTENCE_END = {
    "en": re.compile(r"(?<=[.!?])\s+(?=\S)|\n+"),
    "zh": re.compile(r"(?<=[。！？!?；;…])|\n+"),
}
_CLAUSE_BREAK = {
    "en": re.compile(r"\s*[,;:()\u2013\u2014]\s*|\s+-\s+|\s+(?=(?:but|although|though|however|whereas|except)\b)"),
    "zh": re.compile(r"[，,、；;：:~～（）()\s]+|(?=但是|不过|可是|就是|只是)"),
}


def _pieces(pattern: re.Pattern[str], text: str, start: int = 0) -> list[Span]:
    out, position = [], 0
    for match in pattern.finditer(text):
        if match.start() > position:
            out.append((position, match.start()))
        position = max(position, match.end())
    out.append((position, len(text)))
    spans = []
    for a, b in out:
        piece = text[a:b]
        stripped = piece.strip()
        if not stripped or not any(ch.isalnum() for ch in stripped):
            continue
        offset = a + (len(piece) - len(piece.lstrip()))
        spans.append(Span(stripped, start + offset, start + offset + len(stripped)))
    return spans


def split_sentences(text: str, language: str) -> list[Span]:
    """Sentences of a cleaned review (offsets into ``text``); pieces without a letter or digit are dropped.

    Example:
        >>> [s.text for s in split_sentences("很好用。物流很快！", "zh")]
        ['很好用。', '物流很快！']
    """
    return _pieces(_SENTENCE_END["zh" if language == "zh" else "en"], text)


def split_clauses(sentence: Span | str, language: str) -> list[Span]:
    """Clauses of a sentence: cut at commas, semicolons, brackets and before contrast words.

    Example:
        >>> [c.text for c in split_clauses("质量不错，但是物流太慢", "zh")]
        ['质量不错', '但是物流太慢']
    """
    span = sentence if isinstance(sentence, Span) else Span(sentence, 0, len(sentence))
    return _pieces(_CLAUSE_BREAK["zh" if language == "zh" else "en"], span.text, span.start) or [span]


# -- candidate terms ----------------------------------------------------------------------
_EN_TOKEN = re.compile(r"[a-z0-9][a-z0-9'&/\-.]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)
_EN_DETERMINERS = _words("the this that these those its my our their your his her a an")
_EN_COPULAS = _words("is are was were has have had feels feel looks look seems seem works work")
#: words that never belong to an aspect term (function words, pronouns, opinion words, common verbs)
_EN_STOP = _EN_FUNCTION | _words(
    "one ones thing things product products item items unit purchase order stuff lot bit way time times",
    "day days week weeks month months year years good great nice bad poor best better worst excellent",
    "awesome terrible amazing perfect easy hard difficult little small big large new old first second",
    "other another same more most much many few less well really quite pretty extremely fairly rather",
    "somewhat highly overall love like hate recommend bought buy got get use used using make made works",
    "worked working i'm it's don't doesn't didn't can't won't isn't wasn't wouldn't couldn't n't 's 'm",
    "'ve 're since after before while because about up down out over again still even never ever always",
    "problem problems issue issues play plays played come comes came take takes took give gives gave need",
    "needs want wants find found think thought know say says said go goes went turn turns keep keeps",
)
_EN_NOT_VERB = _words("speed feed bed need seed")


def _en_stop(word: str) -> bool:
    """Function, opinion and common verb words, adverbs in -ly and past forms in -ed end an English term."""
    if word in _EN_STOP:
        return True
    return len(word) > 4 and (word.endswith("ly") or (word.endswith("ed") and word not in _EN_NOT_VERB))


_ZH_OPINION = re.compile(
    r"很|非常|太|挺|比较|特别|十分|超|真|有点|有些|还|也|都|蛮|相当|极|好|差|不|没|一般|就|偏|稍|略|实在|更|最"
)
_ZH_LEADING = re.compile(
    r"^(?:但是|不过|可是|就是|只是|而且|并且|另外|总之|感觉|觉得|我们|我|这个|这款|这次|那个|的|了|和|跟|连)+"
)
_ZH_TRAILING = re.compile(r"(?:的|了|也|都|就|还|是|呢|啊)+$")
_ZH_TERM = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9]{2,6}$")
_ZH_GENERIC = _words(
    "东西 商品 宝贝 产品 物品 总体 整体 总的来说 京东 自己 机器 一次 这次 第一次 第二次",
    "大家 朋友 孩子 老公 老婆 家人 用起来 看起来 穿起来 吃起来 用了 买了 收到 到手",
)


def _lexicon_matches(clause: Span, language: str, lexicon: Mapping[str, str]) -> list[Term]:
    text = clause.text.lower() if language == "en" else clause.text
    found: list[Term] = []
    taken = [False] * len(text)
    for term in sorted(lexicon, key=len, reverse=True):
        key = term.lower() if language == "en" else term
        start = 0
        while (k := text.find(key, start)) >= 0:
            start = k + 1
            end = k + len(key)
            if language == "en" and ((k > 0 and text[k - 1].isalnum()) or (end < len(text) and text[end].isalnum())):
                continue  # whole words only in English ("price" is not in "priceless")
            if any(taken[k:end]):
                continue
            taken[k:end] = [True] * (end - k)
            found.append(Term(clause.text[k:end], clause.start + k, clause.start + end, lexicon[term]))
    return found


def _english_open_terms(clause: Span) -> list[tuple[int, int]]:
    tokens = [(m.group().lower(), m.start(), m.end()) for m in _EN_TOKEN.finditer(clause.text)]
    spans = []
    for i, (word, _, _) in enumerate(tokens):
        starts_phrase = word in _EN_DETERMINERS or (i == 0 and not _en_stop(word))
        j = i + 1 if word in _EN_DETERMINERS else i
        run = []
        while j < len(tokens) and len(run) < 3 and not _en_stop(tokens[j][0]) and not tokens[j][0].isdigit():
            run.append(tokens[j])
            j += 1
        if not starts_phrase or not run:
            continue
        if word not in _EN_DETERMINERS and not (j < len(tokens) and tokens[j][0] in _EN_COPULAS):
            continue  # a clause-initial phrase counts only before a copula ("sound quality is ...")
        spans.append((run[0][1], run[-1][2]))
    return spans


def _chinese_open_terms(clause: Span) -> list[tuple[int, int]]:
    match = _ZH_OPINION.search(clause.text)
    if match is None or match.start() < 2:
        return []
    head = clause.text[: match.start()]
    lead = _ZH_LEADING.match(head)
    begin = lead.end() if lead else 0
    trail = _ZH_TRAILING.search(head[begin:])
    end = begin + (trail.start() if trail else len(head) - begin)
    term = head[begin:end]
    if len(term) > 6:  # keep the end of a long run: "这个手机的屏幕" -> the noun next to the opinion
        begin = end - 4
        term = head[begin:end]
    if not _ZH_TERM.match(term) or term in _ZH_GENERIC:
        return []
    return [(begin, end)]


def candidate_terms(clause: Span, language: str, lexicon: Mapping[str, str]) -> list[Term]:
    """Aspect term candidates of one clause: lexicon terms (with their category), then open terms.

    Args:
        clause: a clause from :func:`split_clauses`.
        language: ``"zh"`` or ``"en"``.
        lexicon: term -> category of the language (``AspectExtractor`` keeps the seed lexicon).

    Returns:
        Non-overlapping terms in text order.

    Example:
        >>> [t.text for t in candidate_terms(Span("屏幕很清晰", 0, 5), "zh", {})]
        ['屏幕']
    """
    found = _lexicon_matches(clause, language, lexicon)
    taken = [(t.start - clause.start, t.end - clause.start) for t in found]
    spans = _chinese_open_terms(clause) if language == "zh" else _english_open_terms(clause)
    for a, b in spans:
        if any(a < y and x < b for x, y in taken):
            continue  # overlaps a lexicon term: the lexicon term stands
        taken.append((a, b))
        found.append(Term(clause.text[a:b], clause.start + a, clause.start + b, None))
    return sorted(found, key=lambda t: t.start)
