"""The interface every candidate source and recommender model follows.

A source is an :class:`~shoplm.estimator.Estimator` that learns from :class:`Interactions`
and then scores the whole catalog it knows for a *history*: the user's items in time
order, which may include events seconds old that the model never trained on. Reading the
history at query time (rather than a stored user id) is what makes recommendations real
time and keeps every model independent of the training data set.

Example:
    >>> import numpy as np
    >>> data = Interactions.from_arrays(["u1", "u1", "u2"], ["a", "b", "a"], [1, 2, 3])
    >>> data.sequences()["u1"]
    ['a', 'b']
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shoplm.estimator import Estimator
from shoplm.interactions import EVENT_WEIGHTS, Interactions, scaled_to_max

__all__ = ["EVENT_WEIGHTS", "CandidateSource", "Interactions", "scaled_to_max"]


class CandidateSource(Estimator):
    """Scores every item it knows for a history. Subclasses set ``item_ids_`` in ``fit``."""

    item_ids_: np.ndarray

    #: Scores at or below this fraction of the best score carry no signal (a tie-break only):
    #: fusion ignores them, so such items get no rank from this source.
    signal_floor: float = 0.0

    @abstractmethod
    def fit(self, interactions: Interactions, **kwargs: Any) -> Self:
        """Learn from interactions; return ``self``."""

    @abstractmethod
    def score(self, history: Sequence[str]) -> np.ndarray:
        """One score per item of ``item_ids_`` (higher is better; ``-inf`` for never).

        ``history`` is the user's item ids in time order, oldest first; ids the model does
        not know are ignored, an empty history gets the model's cold-start scores.
        """

    def prepare_serving(self) -> None:
        """Get ready to answer many small requests, one history each (called once after loading).

        The default does nothing; a source whose scoring has a costlier or differently tuned
        training path (the sequential model) switches to its serving path here.
        """

    def recommend(self, history: Sequence[str], k: int = 10, *, exclude_seen: bool = False) -> list[tuple[str, float]]:
        """The ``k`` best (item id, score) pairs for ``history``."""
        self.check_fitted()
        scores = np.asarray(self.score(history), dtype=np.float64).copy()
        if exclude_seen and len(history):
            index = self.item_index()
            seen = [index[item] for item in history if item in index]
            scores[seen] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(str(self.item_ids_[i]), float(scores[i])) for i in top]

    def item_index(self) -> dict[str, int]:
        """Item id -> position in ``item_ids_`` (built once; every request reads it)."""
        cached = self.__dict__.get("_item_index")
        if cached is not None and len(cached) == len(self.item_ids_):
            return cached  # type: ignore[no-any-return]
        self.check_fitted()
        cached = {str(item): i for i, item in enumerate(self.item_ids_)}
        self._item_index = cached
        return cached


def padded_histories(histories: list[list[int]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-index histories (non-empty), each cut to its newest ``max_len``, right-padded with 0.

    Returns:
        ``(x, last)``: ``x`` is ``(n, width)`` int64, ``last[i]`` the position of history i's newest item.
    """
    clipped = [h[-max_len:] for h in histories]
    x = np.zeros((len(clipped), max(len(h) for h in clipped)), dtype=np.int64)
    for r, h in enumerate(clipped):
        x[r, : len(h)] = h
    return x, np.array([len(h) - 1 for h in clipped])
