"""Content-based recommendations from item text embeddings: works from the first day.

The embeddings (one L2-normalized row per item, from the language-model layer) are given
as a plain array, so this module does not depend on any model. No interactions are
needed, and a new catalog item is recommendable the moment its embedding is added with
:meth:`TextSimilarityRecommender.add_items`: the cold-start answer for new products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError, ModelFileError
from shoplm.recommend.base import CandidateSource, Interactions, scaled_to_max
from shoplm.recommend.popularity import _check_interactions


def _check_embeddings(
    item_ids: Sequence[str] | np.ndarray, embeddings: Any, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (ids as str array, unit-norm float32 matrix)."""
    ids = np.asarray(item_ids).astype(str).ravel()
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2:
        raise InputError(f"embeddings must be a 2-D array (items x dimensions), got shape {matrix.shape}")
    if len(ids) == 0:
        raise InputError("no items: item_ids is empty")
    if matrix.shape[0] != len(ids):
        raise InputError(f"{len(ids)} item ids but {matrix.shape[0]} embedding rows")
    if dim is not None and matrix.shape[1] != dim:
        raise InputError(f"embeddings have {matrix.shape[1]} dimensions, the model has {dim}")
    if not np.all(np.isfinite(matrix)):
        bad = ids[~np.isfinite(matrix).all(axis=1)][:5].tolist()
        raise InputError(f"embeddings contain NaN or infinite values (items {bad})")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"duplicate item ids: {unique[counts > 1][:5].tolist()}")
    norms = np.linalg.norm(matrix, axis=1)
    if (norms == 0).any():
        raise InputError(f"zero embedding vectors for items {ids[norms == 0][:5].tolist()}")
    # Re-normalize anyway: cheap, and it makes cosine a plain dot product even if a caller forgot.
    return ids, np.ascontiguousarray(matrix / norms[:, None])


class TextSimilarityRecommender(CandidateSource):
    """Cosine similarity between item embeddings and the recency-weighted mean of the history's.

    The newest history item weighs 1, the one before ``recency_decay``, and so on; only the
    last ``max_history`` known items count. An empty or unknown history gets popularity
    (scaled to [0, 1]) when interactions were given to ``fit``, else all zeros.

    Example:
        >>> import numpy as np
        >>> model = TextSimilarityRecommender().fit(item_ids=["a", "b", "c"], embeddings=np.eye(3)[[0, 0, 1]])
        >>> model.similar("a", 1)
        [('b', 1.0)]
    """

    def __init__(self, recency_decay: float = 0.8, max_history: int = 50) -> None:
        self.recency_decay = recency_decay
        self.max_history = max_history

    # -- learning ------------------------------------------------------------------------
    def fit(
        self,
        interactions: Interactions | None = None,
        *,
        item_ids: Sequence[str] | np.ndarray,
        embeddings: np.ndarray,
        **_: Any,
    ) -> Self:
        """Index the catalog embeddings; ``interactions`` (optional) only feed the cold-start ranking."""
        if not 0 < self.recency_decay <= 1:
            raise InputError(f"recency_decay must be in (0, 1], got {self.recency_decay!r}")
        if not isinstance(self.max_history, int | np.integer) or self.max_history < 1:
            raise InputError(f"max_history must be a positive integer, got {self.max_history!r}")
        ids, matrix = _check_embeddings(item_ids, embeddings)
        popularity = np.zeros(len(ids), dtype=np.float64)
        if interactions is not None:
            _check_interactions(interactions)
            seen, counts = np.unique(interactions.item_id, return_counts=True)
            position = {item: i for i, item in enumerate(ids)}
            for item, count in zip(seen.tolist(), counts.tolist(), strict=True):
                if item in position:
                    popularity[position[item]] = count
        self.item_ids_ = ids
        self.embeddings_ = matrix
        self.popularity_ = popularity
        self._derive()
        return self

    def add_items(self, item_ids: Sequence[str] | np.ndarray, embeddings: np.ndarray) -> Self:
        """Add new items (or replace the embeddings of known ones); they are scored at once."""
        self.check_fitted()
        ids, matrix = _check_embeddings(item_ids, embeddings, dim=self.embeddings_.shape[1])
        index = self.item_index()
        existing = np.array([index.get(i, -1) for i in ids.tolist()], dtype=np.int64)
        known = existing >= 0
        self.embeddings_ = self.embeddings_.copy()  # never mutate an array a caller may share
        self.embeddings_[existing[known]] = matrix[known]
        if (~known).any():
            self.item_ids_ = np.concatenate([self.item_ids_, ids[~known]])
            self.embeddings_ = np.concatenate([self.embeddings_, matrix[~known]])
            self.popularity_ = np.concatenate([self.popularity_, np.zeros(int((~known).sum()))])
        self._derive()
        return self

    def _derive(self) -> None:
        self._popularity = scaled_to_max(self.popularity_)
        self._item_index = None

    # -- querying ------------------------------------------------------------------------
    def profile(self, history: Sequence[str]) -> np.ndarray | None:
        """The unit-norm taste vector of ``history``; ``None`` if no history item is known."""
        index = self.item_index()  # checks the model is fitted
        known = [index[h] for h in history if h in index][-int(self.max_history) :]
        if not known:
            return None
        weights = float(self.recency_decay) ** np.arange(len(known) - 1, -1, -1, dtype=np.float64)
        vector = weights.astype(np.float32) @ self.embeddings_[known]
        norm = float(np.linalg.norm(vector))
        # Opposite embeddings can cancel out exactly; fall back to the newest item alone.
        return vector / norm if norm > 1e-12 else self.embeddings_[known[-1]].copy()

    def score(self, history: Sequence[str]) -> np.ndarray:
        """Cosine of every item to the history's taste vector (cold start: popularity or zeros)."""
        vector = self.profile(history)
        if vector is None:
            return self._popularity.copy()
        return (self.embeddings_ @ vector).astype(np.float64)

    def search(self, query_vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items closest (cosine) to an embedded query, e.g. a search text."""
        self.check_fitted()
        query = np.asarray(query_vector, dtype=np.float32).ravel()
        if query.shape[0] != self.embeddings_.shape[1]:
            raise InputError(f"query vector has {query.shape[0]} dimensions, the model has {self.embeddings_.shape[1]}")
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm) or norm == 0:
            raise InputError("query vector must be finite and non-zero")
        return self._top(self.embeddings_ @ (query / norm), k)

    def similar(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``item_id``, without itself; ``[]`` for an unknown item."""
        self.check_fitted()
        position = self.item_index().get(str(item_id))
        if position is None:
            return []
        sims = self.embeddings_ @ self.embeddings_[position]
        sims[position] = -np.inf
        return self._top(sims, k)

    def _top(self, sims: np.ndarray, k: int) -> list[tuple[str, float]]:
        k = min(max(k, 0), int(np.isfinite(sims).sum()))
        if k == 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(str(self.item_ids_[i]), float(sims[i])) for i in top]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"item_ids": self.item_ids_, "embeddings": self.embeddings_, "popularity": self.popularity_}
        return arrays, {"n_items": len(self.item_ids_), "dim": int(self.embeddings_.shape[1])}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.embeddings_ = arrays["embeddings"].astype(np.float32)
        self.popularity_ = arrays["popularity"].astype(np.float64)
        if self.embeddings_.shape != (len(self.item_ids_), state.get("dim")):
            raise ModelFileError("text-similarity model arrays are inconsistent (embeddings do not match item ids)")
        self._derive()
