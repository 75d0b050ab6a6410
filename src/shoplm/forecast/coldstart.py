"""Cold start: a SKU with fewer than 8 weeks of history is forecast from similar items.

Similar items are the established SKUs (at least 8 weeks of history) of the same category
whose descriptions' text embeddings are nearest (cosine); their recent weekly demand (the mean of
their last 8 weeks), weighted by similarity, is the new SKU's expected level. The few weeks the
new SKU has already sold are blended in with weight ``weeks / 8``. Without an established item in
its category, the nearest items of any category are used.

The baseline it is measured against, :meth:`ColdStartForecaster.category_mean`, is the mean recent
weekly demand of the category's established SKUs.

Example:
    >>> vectors = np.eye(3, dtype=np.float32)
    >>> model = ColdStartForecaster(n_neighbors=1).fit(["a", "b", "c"], vectors, ["x", "x", "y"], [10.0, 2.0, 50.0])
    >>> model.predict(np.array([[0.9, 0.1, 0.0]]), ["x"]).round(2).tolist()
    [10.0]
    >>> model.predict(np.array([[0.9, 0.1, 0.0]]), ["x"], own_mean=[4.0], own_weeks=[4]).round(2).tolist()
    [7.0]
    >>> model.category_mean(["x", "unknown"]).tolist()
    [6.0, 20.666666666666668]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.forecast.panel import MIN_HISTORY_WEEKS


class ColdStartForecaster(Estimator):
    """Expected weekly demand of new SKUs from their nearest established items by text and category.

    Args:
        n_neighbors: similar items averaged.
        min_weeks: history at which a SKU's own mean takes over completely.
    """

    def __init__(self, n_neighbors: int = 10, min_weeks: int = MIN_HISTORY_WEEKS) -> None:
        self.n_neighbors = n_neighbors
        self.min_weeks = min_weeks

    def fit(
        self,
        item_ids: Sequence[str],
        embeddings: np.ndarray,
        categories: Sequence[str],
        recent_level: Sequence[float],
    ) -> Self:
        """Remember the established items.

        Args:
            item_ids: the established SKUs.
            embeddings: their text vectors (unit length), shape ``(n, dim)``.
            categories: their categories.
            recent_level: their mean weekly demand over their recent weeks.
        """
        vectors = np.asarray(embeddings, dtype=np.float32)
        level = np.asarray(recent_level, dtype=np.float64)
        n = len(item_ids)
        if n == 0:
            raise InputError("cold start needs at least one established item to borrow from")
        if vectors.ndim != 2 or len(vectors) != n or len(categories) != n or len(level) != n:
            raise InputError("item_ids, embeddings, categories and recent_level must have the same length")
        if self.n_neighbors < 1:
            raise InputError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        self.item_ids_ = np.asarray(item_ids, dtype=str)
        self.embeddings_ = vectors
        self.categories_ = np.asarray(categories, dtype=str)
        self.level_ = np.nan_to_num(np.maximum(level, 0.0))
        return self

    def predict(
        self,
        embeddings: np.ndarray,
        categories: Sequence[str],
        *,
        own_mean: Sequence[float] | None = None,
        own_weeks: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Expected weekly demand of each new item (the same for every week ahead).

        Args:
            embeddings: the new items' text vectors.
            categories: their categories.
            own_mean: their mean weekly demand so far (0 weeks: ignored).
            own_weeks: how many weeks of history each has.
        """
        self.check_fitted()
        vectors = np.asarray(embeddings, dtype=np.float32)
        n = len(vectors)
        own = np.zeros(n) if own_mean is None else np.asarray(own_mean, dtype=float)
        weeks = np.zeros(n) if own_weeks is None else np.asarray(own_weeks, dtype=float)
        similarity = vectors @ self.embeddings_.T
        out = np.empty(n)
        for i, category in enumerate(categories):
            pool = np.flatnonzero(self.categories_ == str(category))
            if len(pool) == 0:
                pool = np.arange(len(self.item_ids_))
            nearest = pool[np.argsort(-similarity[i, pool], kind="stable")[: self.n_neighbors]]
            weights = np.maximum(similarity[i, nearest], 1e-6)
            out[i] = float(np.sum(weights * self.level_[nearest]) / np.sum(weights))
        share = np.clip(weeks / self.min_weeks, 0.0, 1.0)
        return share * own + (1 - share) * out

    def category_mean(self, categories: Sequence[str]) -> np.ndarray:
        """The baseline: mean recent demand of the category's established items (all items if none)."""
        self.check_fitted()
        overall = float(self.level_.mean())
        means = {c: float(self.level_[self.categories_ == c].mean()) for c in np.unique(self.categories_)}
        return np.array([means.get(str(c), overall) for c in categories])

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "embeddings": self.embeddings_,
            "categories": self.categories_,
            "level": self.level_,
        }
        return arrays, {}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = np.asarray(arrays["item_ids"], dtype=str)
        self.embeddings_ = np.asarray(arrays["embeddings"], dtype=np.float32)
        self.categories_ = np.asarray(arrays["categories"], dtype=str)
        self.level_ = np.asarray(arrays["level"], dtype=np.float64)
