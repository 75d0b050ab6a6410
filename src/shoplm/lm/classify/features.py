"""Character n-gram TF-IDF features, in numpy/scipy, saved as plain arrays (no pickle).

Character n-grams work for Chinese (no word segmentation needed: bigrams are most words) and
English (sub-word pieces survive typos and inflections) alike, and they catch what a frozen
sentence embedding blurs: negations like "不好" / "not good", exact product words, order-id shapes.

With ``pinyin=True`` the toneless pinyin of a text's Chinese characters is appended before the
n-grams are taken (``退货`` also gives the n-grams of ``tui huo``). Customers type pinyin when no
input method is at hand ("tui huo", "quxiao yao shoufei ma"); their messages then share n-grams
with the Chinese ones written in characters, which neither the embedding nor plain character
n-grams can see.

Example:
    >>> tfidf = CharNgramTfidf(max_n=2, max_features=100, min_df=1).fit(["好用", "不好用", "good"])
    >>> x = tfidf.transform(["好用吗"])
    >>> x.shape[0], round(float(x.multiply(x).sum()), 6)
    (1, 1.0)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["CharNgramTfidf", "char_ngrams", "pinyin_of"]

_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\d")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def pinyin_of(text: str) -> str:
    """The toneless pinyin of the text's Chinese characters, one syllable per word ("" if none).

    Example:
        >>> pinyin_of("可以退货吗? ok")
        'ke yi tui huo ma'
    """
    runs = _CJK_RUN.findall(text)
    if not runs:
        return ""
    from pypinyin import lazy_pinyin  # imported on first use: 0.2 s, and only Chinese text needs it

    return " ".join(" ".join(lazy_pinyin(run)) for run in runs)


def char_ngrams(text: str, max_n: int, min_n: int = 1) -> list[str]:
    """The character n-grams (``min_n``..``max_n``) of a lower-cased, space-padded text.

    Digits are folded to ``0``: order numbers and prices should not become thousands of one-off
    features, while the *shape* of a number still shows.

    Example:
        >>> char_ngrams("Hi 42", 2)[:4]
        [' ', 'h', 'i', ' ']
    """
    clean = " " + _DIGITS.sub("0", _SPACES.sub(" ", text.lower()).strip()) + " "
    out: list[str] = []
    for n in range(min_n, max_n + 1):
        out.extend(clean[i : i + n] for i in range(len(clean) - n + 1))
    return out


class CharNgramTfidf:
    """Sublinear TF-IDF over character n-grams, rows scaled to unit L2 norm.

    The vocabulary is the ``max_features`` n-grams found in the most training texts (at least
    ``min_df``); ``vocabulary`` and ``idf`` are all there is to save (with the ``pinyin`` flag:
    see the module docstring).
    """

    def __init__(
        self, max_n: int = 3, max_features: int = 100_000, min_df: int = 2, min_n: int = 1, *, pinyin: bool = False
    ) -> None:
        if max_n < min_n or min_n < 1:
            raise ValueError(f"need 1 <= min_n <= max_n, got {min_n}, {max_n}")
        self.max_n = max_n
        self.min_n = min_n
        self.max_features = max_features
        self.min_df = min_df
        self.pinyin = pinyin
        self.vocabulary: list[str] = []
        self.idf = np.zeros(0, dtype=np.float32)
        self._index: dict[str, int] = {}

    def fit(self, texts: Sequence[str]) -> CharNgramTfidf:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(self._ngrams(text)))
        kept = [(g, c) for g, c in df.items() if c >= self.min_df]
        # Most frequent first, then alphabetical: the same texts always give the same vocabulary.
        kept.sort(key=lambda gc: (-gc[1], gc[0]))
        kept = kept[: self.max_features]
        n = max(len(texts), 1)
        counts = np.array([c for _, c in kept], dtype=np.float64)
        self.set_vocabulary([g for g, _ in kept], (np.log((1 + n) / (1 + counts)) + 1).astype(np.float32))
        return self

    def set_vocabulary(self, vocabulary: Iterable[str], idf: np.ndarray) -> CharNgramTfidf:
        """Restore a fitted vectorizer from its saved arrays."""
        self.vocabulary = [str(g) for g in vocabulary]
        self.idf = np.asarray(idf, dtype=np.float32)
        if len(self.vocabulary) != self.idf.size:
            raise ValueError(f"{len(self.vocabulary)} n-grams but {self.idf.size} idf weights")
        self._index = {g: i for i, g in enumerate(self.vocabulary)}
        if self.pinyin:
            import pypinyin  # noqa: F401  # at load, not in the first Chinese message's answer (0.2 s)
        return self

    def _ngrams(self, text: str) -> list[str]:
        if self.pinyin and (spoken := pinyin_of(text)):
            text = f"{text} {spoken}"
        return char_ngrams(text, self.max_n, self.min_n)

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """A sparse ``(len(texts), dim)`` float32 matrix; texts with no known n-gram are zero rows."""
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        index = self._index
        for text in texts:
            counts = Counter(i for g in self._ngrams(text) if (i := index.get(g)) is not None)
            indices.extend(counts.keys())
            data.extend(counts.values())
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(texts), self.dim),
            dtype=np.float32,
        )
        matrix.data = (1.0 + np.log(matrix.data)) * self.idf[matrix.indices]
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        matrix = sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ matrix
        return matrix.tocsr()
