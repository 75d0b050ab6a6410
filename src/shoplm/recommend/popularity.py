"""Time-decayed popularity: the baseline every shop needs and the cold-start fallback.

Each event counts ``weight * 0.5 ** (age / half_life)``, its age measured from the newest
event of the training data (not from the wall clock, so a model scores the same whatever
day it is loaded). Optionally popularity is also kept per category, and a history pulls
the ranking toward the categories the user has been looking at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.recommend.base import CandidateSource, Interactions, scaled_to_max

_MS_PER_DAY = 86_400_000.0


def _check_interactions(interactions: Interactions) -> None:
    if not isinstance(interactions, Interactions):
        raise InputError(f"expected Interactions, got {type(interactions).__name__}")
    if len(interactions) == 0:
        raise InputError("no interactions to learn from")
    if not np.all(np.isfinite(interactions.weight)):
        raise InputError("interaction weights must be finite numbers")
    if np.any(interactions.weight < 0):
        raise InputError("interaction weights must not be negative")


class PopularityRecommender(CandidateSource):
    """Weighted, exponentially time-decayed popularity, optionally blended per category.

    Scores lie in [0, 1]: the global popularity relative to the most popular item. With
    ``by_category=True`` and a non-empty history, each item also gains
    ``category_blend * share * within_category_popularity``, where ``share`` is the fraction
    of the (known) history in the item's category, so a user browsing shoes sees popular
    shoes first, then the shop's overall best sellers.

    Example:
        >>> data = Interactions.from_arrays(["u1", "u2", "u3"], ["a", "a", "b"], [0, 1, 2])
        >>> PopularityRecommender().fit(data).top(1)
        [('a', 1.0)]
    """

    def __init__(self, half_life_days: float = 14.0, by_category: bool = False, category_blend: float = 0.8) -> None:
        self.half_life_days = half_life_days
        self.by_category = by_category
        self.category_blend = category_blend

    # -- learning ------------------------------------------------------------------------
    def fit(self, interactions: Interactions, item_category: Mapping[str, str] | None = None, **_: Any) -> Self:
        """Count decayed, weighted events per item; ``item_category`` maps item id -> category."""
        _check_interactions(interactions)
        if not self.half_life_days > 0:
            raise InputError(f"half_life_days must be positive, got {self.half_life_days!r}")
        if self.by_category and item_category is None:
            raise InputError("by_category=True needs item_category (item id -> category) in fit()")
        items, codes = np.unique(interactions.item_id, return_inverse=True)
        reference = int(interactions.ts_ms.max())
        age_days = (reference - interactions.ts_ms).astype(np.float64) / _MS_PER_DAY
        decayed = interactions.weight.astype(np.float64) * np.exp2(-age_days / float(self.half_life_days))
        self.item_ids_ = items.astype(str)
        self.popularity_ = np.bincount(codes, weights=decayed, minlength=len(items))
        self.reference_ts_ms_ = reference
        if item_category is not None:
            self.item_category_ = np.array([str(item_category.get(i) or "") for i in self.item_ids_], dtype=str)
        else:
            self.item_category_ = np.full(len(items), "", dtype=str)
        self._derive()
        return self

    def _derive(self) -> None:
        """Normalized views used at query time (recomputed after load, never saved)."""
        self._global = scaled_to_max(self.popularity_)
        # Within-category popularity in [0, 1], so small categories are not drowned by big ones.
        categories, cat_codes = np.unique(self.item_category_, return_inverse=True)
        cat_max = np.zeros(len(categories))
        np.maximum.at(cat_max, cat_codes, self.popularity_)
        denom = cat_max[cat_codes]
        self._within = np.divide(self.popularity_, denom, out=np.zeros_like(self.popularity_), where=denom > 0)
        self._categories = {str(c): i for i, c in enumerate(categories)}
        self._cat_codes = cat_codes
        self._item_index = None

    # -- querying ------------------------------------------------------------------------
    def score(self, history: Sequence[str]) -> np.ndarray:
        """Global popularity, or with ``by_category`` blended toward the history's categories."""
        self.check_fitted()
        scores = self._global.copy()
        if not self.by_category or len(history) == 0:
            return scores
        index = self.item_index()
        known = [index[h] for h in history if h in index]
        if not known:
            return scores
        share = np.bincount(self._cat_codes[known], minlength=len(self._categories)) / len(known)
        blank = self._categories.get("")
        if blank is not None:
            share[blank] = 0.0  # items without a category say nothing about taste
        scores += float(self.category_blend) * share[self._cat_codes] * self._within
        return scores

    def top(self, k: int = 10, category: str | None = None) -> list[tuple[str, float]]:
        """The ``k`` most popular (item id, global score) pairs, optionally within ``category``."""
        self.check_fitted()
        candidates = np.arange(len(self.item_ids_))
        if category is not None:
            code = self._categories.get(str(category))
            if code is None:
                return []
            candidates = candidates[self._cat_codes == code]
        order = candidates[np.argsort(-self._global[candidates], kind="stable")[: max(k, 0)]]
        return [(str(self.item_ids_[i]), float(self._global[i])) for i in order]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"item_ids": self.item_ids_, "popularity": self.popularity_, "item_category": self.item_category_}
        return arrays, {"reference_ts_ms": self.reference_ts_ms_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.popularity_ = arrays["popularity"].astype(np.float64)
        self.item_category_ = arrays["item_category"].astype(str)
        self.reference_ts_ms_ = int(state["reference_ts_ms"])
        self._derive()
