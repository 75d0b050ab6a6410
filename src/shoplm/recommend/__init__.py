"""Candidate sources: each scores the whole catalog for a user's history.

Example:
    >>> from shoplm.recommend import Interactions, PopularityRecommender
    >>> data = Interactions.from_arrays(["u1", "u2"], ["a", "a"])
    >>> PopularityRecommender().fit(data).recommend([], k=1)
    [('a', 1.0)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoplm.recommend.base import EVENT_WEIGHTS, CandidateSource, Interactions
from shoplm.recommend.cooccurrence import CooccurrenceRecommender
from shoplm.recommend.matrix_factorization import ALSRecommender
from shoplm.recommend.popularity import PopularityRecommender
from shoplm.recommend.text_similarity import TextSimilarityRecommender

if TYPE_CHECKING:
    from shoplm.recommend.sequential import SequentialRecommender

__all__ = [
    "EVENT_WEIGHTS",
    "ALSRecommender",
    "CandidateSource",
    "CooccurrenceRecommender",
    "Interactions",
    "PopularityRecommender",
    "SequentialRecommender",
    "TextSimilarityRecommender",
]


def __getattr__(name: str) -> Any:
    # The sequential model needs torch, slow to import: load it only when asked for.
    if name == "SequentialRecommender":
        from shoplm.recommend.sequential import SequentialRecommender

        return SequentialRecommender
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
