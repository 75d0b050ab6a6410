"""Business rules applied after ranking: stock, purchases, re-views, diversity, price band, boost and bury.

Rules are data (a frozen dataclass), so a shop sets them in code, in settings, or per
request; they never need a retrain.

Example:
    >>> import numpy as np
    >>> scores = np.array([3.0, 2.0, 1.0, 0.5])
    >>> categories = np.array(["a", "a", "a", "b"], dtype=object)
    >>> diversify(np.argsort(-scores), categories, k=3, max_per_category=2).tolist()
    [0, 1, 3]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shoplm.recommend.catalog import CatalogView


@dataclass(frozen=True)
class BusinessRules:
    """What may be shown and how it is ordered beyond the model's scores."""

    exclude_out_of_stock: bool = True
    exclude_purchased: bool = False
    exclude_seen: bool = False
    max_per_category: int | None = None  # diversity cap per top-level category in the top k
    # home feed: the largest share of the k items the user already viewed or bought (None: no cap)
    max_seen_share: float | None = None
    min_price: float | None = None
    max_price: float | None = None
    boost: dict[str, float] = field(default_factory=dict)  # item id -> added score
    bury: frozenset[str] = frozenset()  # item ids pushed below everything else

    def allowed(
        self,
        candidates: np.ndarray,
        catalog: CatalogView,
        *,
        purchased: Sequence[str] = (),
        seen: Sequence[str] = (),
        blocked: Sequence[str] = (),
    ) -> np.ndarray:
        """A mask over ``candidates`` (catalog positions) of the items that may be shown."""
        keep = np.ones(len(candidates), dtype=bool)
        if self.exclude_out_of_stock:
            keep &= catalog.in_stock[candidates]
        price = catalog.price[candidates]
        if self.min_price is not None:
            keep &= ~(price < self.min_price)  # unknown prices pass
        if self.max_price is not None:
            keep &= ~(price > self.max_price)
        excluded: list[str] = list(blocked)
        if self.exclude_purchased:
            excluded.extend(purchased)
        if self.exclude_seen:
            excluded.extend(seen)
        if excluded:
            keep &= ~np.isin(candidates, catalog.positions(excluded))
        return keep

    def adjust(self, candidates: np.ndarray, scores: np.ndarray, catalog: CatalogView) -> np.ndarray:
        """Scores after boost and bury."""
        if not self.boost and not self.bury:
            return scores
        adjusted = scores.astype(np.float64).copy()
        ids = catalog.item_ids[candidates]
        if self.boost:
            adjusted += np.fromiter((self.boost.get(i, 0.0) for i in ids), dtype=np.float64, count=len(ids))
        if self.bury:
            buried = np.fromiter((i in self.bury for i in ids), dtype=bool, count=len(ids))
            adjusted[buried] -= 1e6
        return adjusted


def cap_seen(order: np.ndarray, seen: np.ndarray, *, k: int, max_share: float | None) -> np.ndarray:
    """``order`` with the seen items beyond ``floor(max_share * k)`` moved behind every new item.

    A home feed should mostly help the shopper find something new: items they already viewed or
    bought keep their place up to the cap, and fill the feed only when new items run out.

    Args:
        order: candidate positions, best first.
        seen: a mask over candidate positions: True for an item the shopper viewed or bought.
        k: the feed's length; max_share: the cap's share of it (None: no cap).

    Returns:
        The reordered positions (the same set).

    Example:
        >>> cap_seen(np.array([0, 1, 2, 3]), np.array([True, True, False, False]), k=4, max_share=0.25).tolist()
        [0, 2, 3, 1]
    """
    if max_share is None or not seen.any():
        return order
    limit = int(np.floor(max_share * k + 1e-9))
    is_seen = seen[order]
    over = np.flatnonzero(is_seen)[limit:]  # seen items past the cap, in their order
    if not len(over):
        return order
    late = np.zeros(len(order), dtype=bool)
    late[over] = True
    return np.concatenate([order[~late], order[late]])


def diversify(order: np.ndarray, categories: np.ndarray, *, k: int, max_per_category: int | None) -> np.ndarray:
    """The first ``k`` of ``order`` with at most ``max_per_category`` per category.

    Greedy: walk the ranking, skip an item whose category is full; if the cap leaves fewer
    than ``k``, the skipped items fill the rest in their original order.
    """
    if max_per_category is None or max_per_category <= 0:
        return order[:k]
    counts: dict[object, int] = {}
    chosen: list[int] = []
    skipped: list[int] = []
    for position in order:
        category = categories[position]
        if counts.get(category, 0) < max_per_category:
            counts[category] = counts.get(category, 0) + 1
            chosen.append(int(position))
            if len(chosen) == k:
                break
        else:
            skipped.append(int(position))
    if len(chosen) < k:
        chosen.extend(skipped[: k - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)
