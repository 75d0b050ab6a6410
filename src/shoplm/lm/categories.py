"""Product categories derived from descriptions, for shops (like Online Retail) that have none.

The descriptions' e5 embeddings are clustered with k-means; k is the candidate with the highest
silhouette on the embeddings (cosine distance, on a fixed sample of at most 3,000 items), and
each cluster is named by its top c-TF-IDF keywords (the class-based TF-IDF of BERTopic:
a term's frequency in the cluster's concatenated descriptions times log(1 + average words per
cluster / the term's frequency over all clusters)), so that a name says what sets the cluster
apart rather than which words are common everywhere.

Without embeddings (no encoder installed), TF-IDF vectors of the descriptions reduced to 64
dimensions by truncated SVD are clustered instead: a weaker but dependency-free fallback.

Example:
    >>> descriptions = ["red mug", "blue mug", "tea mug", "paper napkins", "party napkins", "napkins set"]
    >>> found = derive_categories(descriptions, k=2, n_keywords=1)
    >>> sorted(found.names)
    ['mug', 'napkins']
    >>> found.labels[0] == found.labels[1] != found.labels[3]
    np.True_
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shoplm.errors import InputError

#: k candidates tried when k is not given (capped by the number of items).
K_CANDIDATES = (8, 10, 12, 15, 20, 25, 30, 40)
SILHOUETTE_SAMPLE = 3000


@dataclass
class ItemCategories:
    """Cluster of every item and the name of every cluster.

    Attributes:
        labels: cluster index of each description, shape ``(n,)``.
        names: name of each cluster (its top keywords joined by ``" "``), unique.
        k: the number of clusters.
        silhouettes: silhouette of each k tried (empty when k was given).
        source: ``"embeddings"`` or ``"tfidf"``.
    """

    labels: np.ndarray
    names: list[str]
    k: int
    silhouettes: dict[int, float]
    source: str

    def category_of(self) -> list[str]:
        """The category name of each item, in input order."""
        return [self.names[label] for label in self.labels]


def derive_categories(
    descriptions: Sequence[str],
    embeddings: np.ndarray | None = None,
    *,
    k: int | None = None,
    k_candidates: Sequence[int] = K_CANDIDATES,
    n_keywords: int = 2,
    seed: int = 0,
) -> ItemCategories:
    """Cluster item descriptions into named categories.

    Args:
        descriptions: one text per item.
        embeddings: the items' text vectors (e5), shape ``(n, dim)``; ``None``: TF-IDF + SVD.
        k: the number of clusters; ``None``: chosen by silhouette among ``k_candidates``.
        k_candidates: the k tried when ``k`` is None.
        n_keywords: keywords per cluster name.
        seed: k-means and sampling seed.

    Returns:
        The :class:`ItemCategories`.

    Raises:
        InputError: fewer than 2 descriptions, embeddings of the wrong shape, or k out of range.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    texts = [str(text) for text in descriptions]
    n = len(texts)
    if n < 2:
        raise InputError(f"need at least 2 item descriptions to derive categories, got {n}")
    if embeddings is None:
        vectors, source = _tfidf_vectors(texts, seed), "tfidf"
    else:
        vectors, source = np.asarray(embeddings, dtype=np.float32), "embeddings"
        if vectors.ndim != 2 or len(vectors) != n:
            raise InputError(f"embeddings must have shape ({n}, dim), got {vectors.shape}")
    silhouettes: dict[int, float] = {}
    if k is None:
        candidates = sorted({c for c in k_candidates if 2 <= c < n}) or [min(2, n)]
        rng = np.random.default_rng(seed)
        sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)
        best: tuple[float, int, np.ndarray] | None = None
        for candidate in candidates:
            labels = KMeans(candidate, n_init=3, random_state=seed).fit_predict(vectors)
            if len(np.unique(labels[sample])) < 2:
                continue
            score = float(silhouette_score(vectors[sample], labels[sample], metric="cosine"))
            silhouettes[candidate] = round(score, 4)
            if best is None or score > best[0]:
                best = (score, candidate, labels)
        if best is None:
            raise InputError("the descriptions do not split into clusters (all identical?)")
        k, labels = best[1], best[2]
    else:
        if not 1 <= k <= n:
            raise InputError(f"k must be between 1 and the number of items ({n}), got {k}")
        labels = KMeans(k, n_init=3, random_state=seed).fit_predict(vectors)
    names = cluster_names(texts, labels, k, n_keywords=n_keywords)
    return ItemCategories(labels=labels.astype(np.int64), names=names, k=int(k), silhouettes=silhouettes, source=source)


def mixed_language_terms(text: str) -> list[str]:
    """Terms of an English or Chinese text: English words (no stop words) and character bigrams of Chinese runs.

    Chinese has no spaces, so a run of Han characters gives its overlapping character pairs
    (a one-character run gives itself), leaving out pairs with a particle such as 了 or 的; this is
    the usual tokenizer-free choice for keyword weights.

    Example:
        >>> mixed_language_terms("The battery dies. 电池没电了")
        ['battery', 'dies', '电池', '池没', '没电']
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    terms: list[str] = []
    for word, han in _TERM.findall(text.lower()):
        if word and word not in ENGLISH_STOP_WORDS:
            terms.append(word)
        elif han:
            pairs = [han[i : i + 2] for i in range(len(han) - 1)] or [han]
            terms.extend(pair for pair in pairs if not _HAN_PARTICLES.intersection(pair))
    return terms


#: grammatical particles: a bigram holding one ("了一", "周就") is glue, not a keyword
_HAN_PARTICLES = frozenset("了的就都也着吗呢吧啊得很")
_TERM = re.compile(r"([a-z][a-z]+)|([\u4e00-\u9fff]+)")


def cluster_names(
    texts: Sequence[str],
    labels: np.ndarray,
    k: int,
    *,
    n_keywords: int = 2,
    analyzer: Callable[[str], list[str]] | None = None,
) -> list[str]:
    """Name each cluster by its top c-TF-IDF keywords; names are made unique with a number.

    Args:
        analyzer: turns a text into its terms (e.g. :func:`mixed_language_terms` for Chinese);
            default: English words of two letters or more, without stop words.

    Example:
        >>> cluster_names(["red mug", "tea mug", "lace doily"], np.array([0, 0, 1]), 2, n_keywords=1)
        ['mug', 'doily']
    """
    from sklearn.feature_extraction.text import CountVectorizer

    documents = [" ".join(t for t, label in zip(texts, labels, strict=True) if label == c) for c in range(k)]
    if analyzer is not None:
        vectorizer = CountVectorizer(analyzer=analyzer)
    else:
        vectorizer = CountVectorizer(lowercase=True, stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(float)
    except ValueError:  # no word at all (numbers only)
        return [f"category {c + 1}" for c in range(k)]
    vocabulary = vectorizer.get_feature_names_out()
    term_frequency = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    average_words = counts.sum() / k
    weights = term_frequency * np.log1p(average_words / np.maximum(counts.sum(axis=0), 1.0))
    names: list[str] = []
    for c in range(k):
        top = [vocabulary[i] for i in np.argsort(-weights[c], kind="stable")[:n_keywords] if weights[c, i] > 0]
        name = " ".join(top) or f"category {c + 1}"
        while name in names:
            name = f"{name} {c + 1}"
        names.append(name)
    return names


def _tfidf_vectors(texts: list[str], seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    matrix = TfidfVectorizer(lowercase=True, min_df=1).fit_transform(texts)
    n_components = min(64, matrix.shape[1] - 1, len(texts) - 1)
    if n_components < 2:
        return matrix.toarray().astype(np.float32)
    return normalize(TruncatedSVD(n_components, random_state=seed).fit_transform(matrix)).astype(np.float32)
