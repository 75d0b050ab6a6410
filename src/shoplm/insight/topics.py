"""Complaint topics: negative reviews clustered by their e5 vectors and named by c-TF-IDF keywords.

HDBSCAN (scikit-learn's) finds dense groups of reviews saying the same thing without being told
how many there are, and leaves reviews that fit no group as noise (see :func:`_prepare` for the
language centring and PCA before it); each group is named by its
top c-TF-IDF keywords (:func:`shoplm.lm.categories.cluster_names`), with English words and
Chinese character bigrams as terms (:func:`shoplm.lm.categories.mixed_language_terms`), so
``漏液`` and ``battery dies`` can both name a topic. The vectors are L2-normalised, so HDBSCAN's
euclidean distance orders pairs as cosine distance does.

Example:
    >>> import numpy as np
    >>> texts = ["battery dies fast", "battery died overnight", "the battery dies",
    ...          "包装破损", "包装破损严重", "包装破了"]
    >>> vectors = np.repeat(np.eye(2), 3, axis=0) + np.random.default_rng(0).normal(0, 0.01, (6, 2))
    >>> found = complaint_topics(texts, vectors, min_cluster_size=3, n_keywords=1)
    >>> sorted(found.names)
    ['battery', '包装']
    >>> top_topics(found, [0, 1, 3])[0]
    {'topic': 'battery', 'reviews': 2}
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoplm.errors import InputError
from shoplm.lm.categories import cluster_names, mixed_language_terms

#: reviews each script group needs before the language direction is taken out
LANGUAGE_GROUP = 20
#: above this many reviews, vectors are reduced to PCA_DIMS before clustering
PCA_AFTER = 30
PCA_DIMS = 10
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class ComplaintTopics:
    """Topic of every review (``-1``: no topic) and every topic's name and size.

    Attributes:
        labels: topic index per review, shape ``(n,)``; ``-1`` for reviews HDBSCAN left as noise.
        names: the name of each topic (its keywords joined by spaces).
        sizes: reviews per topic.
    """

    labels: np.ndarray
    names: list[str]
    sizes: list[int]

    def to_list(self) -> list[dict[str, Any]]:
        """``[{"topic", "reviews"}]``, largest topic first."""
        rows = [{"topic": n, "reviews": s} for n, s in zip(self.names, self.sizes, strict=True)]
        return sorted(rows, key=lambda r: (-r["reviews"], r["topic"]))


def complaint_topics(
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    min_cluster_size: int | None = None,
    n_keywords: int = 3,
) -> ComplaintTopics:
    """Cluster negative reviews into named complaint topics.

    Args:
        texts: the negative reviews' texts.
        vectors: their text vectors (e5), shape ``(len(texts), dim)``.
        min_cluster_size: the fewest reviews a topic has; default 2% of the reviews, at least 5.
        n_keywords: keywords per topic name.

    Returns:
        The :class:`ComplaintTopics` (no topic at all when there are fewer reviews than
        ``min_cluster_size``).

    Raises:
        InputError: vectors of the wrong shape.
    """
    from sklearn.cluster import HDBSCAN

    texts = [str(t) for t in texts]
    n = len(texts)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != n:
        raise InputError(f"vectors must have shape ({n}, dim), got {vectors.shape}")
    size = max(5, round(0.02 * n)) if min_cluster_size is None else max(2, int(min_cluster_size))
    if n < size or n < 2:
        return ComplaintTopics(labels=np.full(n, -1, dtype=np.int64), names=[], sizes=[])
    labels = HDBSCAN(min_cluster_size=size, min_samples=min(size, 3), copy=True).fit_predict(_prepare(texts, vectors))
    k = int(labels.max()) + 1
    if k == 0:
        return ComplaintTopics(labels=labels.astype(np.int64), names=[], sizes=[])
    names = cluster_names(texts, labels, k, n_keywords=n_keywords, analyzer=mixed_language_terms)
    sizes = [int((labels == c).sum()) for c in range(k)]
    return ComplaintTopics(labels=labels.astype(np.int64), names=names, sizes=sizes)


def _prepare(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    """Unit vectors with the language's own direction taken out, reduced to a few dimensions.

    e5 places a Chinese and an English review of the same complaint apart by language first, so
    clusters would split by language. With at least ``LANGUAGE_GROUP`` reviews in each of
    Chinese and other scripts, each group's mean vector is subtracted (a group that small may
    hold a single topic, which centering would erase). HDBSCAN's density estimate is weak in
    384 dimensions, so more than ``PCA_AFTER`` reviews are reduced to ``PCA_DIMS`` by PCA first
    (BERTopic uses UMAP there, an extra dependency).
    """
    from sklearn.decomposition import PCA

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    chinese = np.array([bool(_HAN.search(t)) for t in texts])
    if min(chinese.sum(), (~chinese).sum()) >= LANGUAGE_GROUP:
        for group in (chinese, ~chinese):
            unit[group] -= unit[group].mean(axis=0)
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    if len(texts) > PCA_AFTER and unit.shape[1] > PCA_DIMS:
        unit = PCA(PCA_DIMS, random_state=0).fit_transform(unit)
    return unit


def distinctive_keywords(texts: Sequence[str], members: Sequence[int], *, n_keywords: int = 3) -> str:
    """The c-TF-IDF keywords of the reviews at ``members`` against all the other ``texts``.

    A spike's reviews share most words with every complaint; what sets them apart (``假货``,
    ``leaking``) names the spike better than the broad topic they fall in.

    Example:
        >>> distinctive_keywords(["fake logo, broke", "broke fast", "broke again", "fake brand"], [0, 3], n_keywords=1)
        'fake'
    """
    labels = np.ones(len(texts), dtype=np.int64)
    labels[list(members)] = 0
    if len(members) == 0 or len(members) == len(texts):
        return ""
    name = cluster_names(list(texts), labels, 2, n_keywords=n_keywords, analyzer=mixed_language_terms)[0]
    return "" if name.startswith("category ") else name


def top_topics(topics: ComplaintTopics, indices: Sequence[int], k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` topics most of the reviews at ``indices`` belong to: ``[{"topic", "reviews"}]``."""
    counts = Counter(int(topics.labels[i]) for i in indices if topics.labels[i] >= 0)
    ranked = sorted(counts.items(), key=lambda c: (-c[1], c[0]))[:k]
    return [{"topic": topics.names[label], "reviews": count} for label, count in ranked]
