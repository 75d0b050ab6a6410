"""Categories from descriptions: k by silhouette, c-TF-IDF names, TF-IDF fallback, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.lm.categories import cluster_names, derive_categories

MUGS = ["white ceramic mug", "blue ceramic mug", "tea mug large", "coffee mug set", "ceramic mug red"]
CANDLES = ["scented candle jar", "vanilla candle", "candle holder glass", "tea light candle", "pillar candle"]
BAGS = ["jumbo shopper bag", "lunch bag red", "jumbo bag pink", "storage bag", "bag charm"]


def three_blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 5
    vectors = np.vstack([centres[i] + rng.normal(0, 0.3, (5, 16)) for i in range(3)])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_k_is_chosen_by_silhouette_and_clusters_are_named_by_keywords() -> None:
    found = derive_categories(MUGS + CANDLES + BAGS, three_blobs(), k_candidates=(2, 3, 4, 6))
    assert found.k == 3
    assert found.silhouettes[3] == max(found.silhouettes.values())
    assert found.source == "embeddings"
    groups = [set(found.labels[i : i + 5]) for i in (0, 5, 10)]
    assert all(len(g) == 1 for g in groups) and len({next(iter(g)) for g in groups}) == 3
    names = found.category_of()
    assert names[0].startswith("mug") and names[5].startswith("candle") and names[10].startswith("bag")


def test_tfidf_fallback_without_embeddings() -> None:
    found = derive_categories(MUGS + CANDLES, k=2, n_keywords=1)
    assert found.source == "tfidf"
    assert sorted(found.names) == ["candle", "mug"]
    assert len(set(found.labels[:5])) == 1 and found.labels[0] != found.labels[5]


def test_names_are_unique() -> None:
    names = cluster_names(["mug", "mug", "mug"], np.array([0, 1, 2]), 3, n_keywords=1)
    assert len(set(names)) == 3 and all(name.startswith("mug") for name in names)


def test_bad_input() -> None:
    with pytest.raises(InputError, match="at least 2"):
        derive_categories(["one"])
    with pytest.raises(InputError, match="shape"):
        derive_categories(MUGS, np.zeros((3, 4)))
    with pytest.raises(InputError, match="k must be"):
        derive_categories(MUGS, k=9)
