"""User profiles: interest tags (top categories, brands, price band) and a vector, from a history.

Pure logic over the engine's catalog and sources; the store-bound side (reading the live
history, pseudonymous ids) is :class:`shoplm.app.recommender.ShopRecommender`.

Example:
    >>> import pandas as pd
    >>> from shoplm.recommend.catalog import CatalogView
    >>> catalog = CatalogView.from_frame(pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"],
    ...     "category": ["Toys > Cars", "Toys > Dolls"], "brand": ["Acme", ""], "price": [10.0, 30.0]}))
    >>> profile = build_profile("u1", ["a", "a", "b"], catalog, {})
    >>> profile.tags
    ['Toys', 'Acme', 'budget']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shoplm.recommend.catalog import CatalogView


@dataclass(frozen=True)
class UserProfile:
    """What shoplm knows of a user's interests, readable and as a vector."""

    user_id: str
    events: int
    top_categories: list[tuple[str, float]]
    top_brands: list[tuple[str, float]]
    price_band: str  # budget / mid / premium / unknown
    tags: list[str]
    vector: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "events": self.events,
            "top_categories": [{"category": c, "share": round(s, 3)} for c, s in self.top_categories],
            "top_brands": [{"brand": b, "share": round(s, 3)} for b, s in self.top_brands],
            "price_band": self.price_band,
            "tags": self.tags,
            "vector": [round(v, 5) for v in self.vector],
        }


def build_profile(
    user_id: str,
    history: Sequence[str],
    catalog: CatalogView,
    sources: Mapping[str, Any],
    *,
    category_medians: Mapping[str, float] | None = None,
) -> UserProfile:
    """The profile of ``history`` (item ids, oldest first).

    Args:
        user_id: the (pseudonymous) id the profile is of.
        history: the user's items, oldest first.
        catalog: the catalog the items are read from.
        sources: fitted candidate sources; a latent vector comes from one with ``user_vector``
            (ALS), else a taste vector from one with ``profile`` (text).
        category_medians: median price per top category (computed from ``catalog`` if omitted).

    Returns:
        The profile; an empty history gives empty tags and vector.
    """
    positions = catalog.positions(history)
    categories = _shares(catalog.top_category[positions])
    brands = _shares(catalog.brand[positions])
    medians = category_medians if category_medians is not None else price_medians(catalog)
    band = _price_band(catalog, positions, medians)
    tags = [c for c, _ in categories[:3]] + [b for b, _ in brands[:2]] + ([band] if band != "unknown" else [])
    return UserProfile(user_id, len(history), categories[:5], brands[:5], band, tags, _user_vector(history, sources))


def price_medians(catalog: CatalogView) -> dict[str, float]:
    """Median price per top-level category (items without a price left out)."""
    frame = pd.DataFrame({"category": catalog.top_category, "price": catalog.price})
    return frame.dropna().groupby("category")["price"].median().to_dict()


def _price_band(catalog: CatalogView, positions: np.ndarray, medians: Mapping[str, float]) -> str:
    ratios = [
        catalog.price[p] / medians[catalog.top_category[p]]
        for p in positions
        if np.isfinite(catalog.price[p]) and medians.get(catalog.top_category[p], 0) > 0
    ]
    if not ratios:
        return "unknown"
    median = float(np.median(ratios))
    return "budget" if median < 0.8 else "premium" if median > 1.25 else "mid"


def _user_vector(history: Sequence[str], sources: Mapping[str, Any]) -> list[float]:
    # A latent vector when a model knows the history, else the text taste vector.
    for method in ("user_vector", "profile"):
        for source in sources.values():
            read = getattr(source, method, None)
            vector = read(history) if callable(read) else None
            if vector is not None:
                return [float(v) for v in vector]
    return []


def _shares(values: np.ndarray) -> list[tuple[str, float]]:
    counts = Counter(v for v in values if v)
    total = sum(counts.values())
    return [(str(v), n / total) for v, n in counts.most_common()] if total else []
