"""Implicit-feedback matrix factorization (ALS, or BPR) with the ``implicit`` library.

Only the item factors are kept. At query time the user vector is solved from the history
with the ALS normal equations on the item factors, which is exactly what ALS computes for
a user during training (implicit's ``recalculate_user``):

    (YᵀY + λI + Σ_h (c_h − 1) y_h y_hᵀ) x = Σ_h c_h y_h,   c_h = alpha · (occurrences of h)

so a history the model never saw (a new visitor, an event seconds old) gets its vector in
tens of microseconds, and the saved model does not grow with the number of users.

Threads: OpenBLAS's own thread pool fights implicit's and can make training 10x slower.
Export ``OPENBLAS_NUM_THREADS=1`` before starting Python (the only setting that reaches a
BLAS already loaded by numpy is a runtime limit, which ``fit`` applies itself through
``threadpoolctl``); ``num_threads`` sets implicit's own threads.
"""

from __future__ import annotations

import os

# Must be set before numpy/implicit load OpenBLAS to take effect; harmless if already set.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError, ModelFileError
from shoplm.recommend.base import CandidateSource, Interactions, scaled_to_max
from shoplm.recommend.popularity import _check_interactions


class ALSRecommender(CandidateSource):
    """Collaborative filtering by matrix factorization; user vectors are computed from the history.

    ``alpha`` scales the summed event weights of a user-item pair into ALS confidence. With
    ``use_bpr=True`` the item factors come from implicit's Bayesian Personalized Ranking
    instead (``learning_rate`` applies); the user vector is then folded in with the same
    least-squares solve, an approximation (BPR itself has no closed form), and the item bias
    BPR learns is added to the scores. An empty or unknown history gets popularity scaled
    to [0, 1].

    Example:
        >>> data = Interactions.from_arrays(["u1", "u1", "u2", "u2"], ["a", "b", "c", "d"])
        >>> model = ALSRecommender(factors=4, iterations=3).fit(data)
        >>> model.score(["a"]).shape
        (4,)
    """

    _version_modules = ("implicit", "scipy")

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        use_bpr: bool = False,
        learning_rate: float = 0.01,
        num_threads: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.use_bpr = use_bpr
        self.learning_rate = learning_rate
        self.num_threads = num_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("factors", "iterations"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        for name in ("alpha", "learning_rate"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.regularization >= 0:
            raise InputError(f"regularization must be >= 0, got {self.regularization!r}")
        if not isinstance(self.num_threads, int) or self.num_threads < 0:
            raise InputError(f"num_threads must be an integer >= 0 (0 = all cores), got {self.num_threads!r}")

    # -- learning ------------------------------------------------------------------------
    def fit(self, interactions: Interactions, *, show_progress: bool = False, **_: Any) -> Self:
        """Factorize the user x item matrix of summed event weights; keep the item factors."""
        _check_interactions(interactions)
        self._check_params()
        keep = interactions.weight > 0
        if not keep.any():
            raise InputError("every interaction has weight 0: nothing to learn from")
        users, user_codes = np.unique(interactions.user_id[keep], return_inverse=True)
        items, item_codes = np.unique(interactions.item_id[keep], return_inverse=True)
        weights = interactions.weight[keep].astype(np.float32)
        from scipy import sparse  # training only: serving reads the factors

        user_items = sparse.csr_matrix((weights, (user_codes, item_codes)), shape=(len(users), len(items)))
        user_items.sum_duplicates()

        # Imported here: loading a saved model and scoring need numpy only, not implicit.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # see the module docstring
            if self.use_bpr:
                from implicit.cpu.bpr import BayesianPersonalizedRanking

                model: Any = BayesianPersonalizedRanking(
                    factors=int(self.factors),
                    learning_rate=float(self.learning_rate),
                    regularization=float(self.regularization),
                    iterations=int(self.iterations),
                    num_threads=int(self.num_threads),
                    random_state=self.random_state,
                )
                model.fit(user_items, show_progress=show_progress)
            else:
                from implicit.cpu.als import AlternatingLeastSquares

                model = AlternatingLeastSquares(
                    factors=int(self.factors),
                    regularization=float(self.regularization),
                    alpha=float(self.alpha),
                    iterations=int(self.iterations),
                    num_threads=int(self.num_threads),
                    random_state=self.random_state,
                )
                model.fit(user_items, show_progress=show_progress)
        factors = np.asarray(model.item_factors, dtype=np.float32)
        if not np.all(np.isfinite(factors)):
            raise InputError("matrix factorization diverged (non-finite factors): raise regularization or lower alpha")
        if self.use_bpr:
            # implicit's BPR keeps an item bias in the last column (the user's last column is 1).
            self.item_factors_ = np.ascontiguousarray(factors[:, :-1])
            self.item_bias_ = np.ascontiguousarray(factors[:, -1])
        else:
            self.item_factors_ = factors
            self.item_bias_ = np.zeros(len(items), dtype=np.float32)
        self.item_ids_ = items.astype(str)
        self.popularity_ = np.asarray(user_items.sum(axis=0), dtype=np.float64).ravel()
        self._derive()
        return self

    def _derive(self) -> None:
        y = self.item_factors_.astype(np.float64)
        # YᵀY + λI is the same for every user: computed once, reused by every query.
        self._gram = y.T @ y + float(self.regularization) * np.eye(y.shape[1])
        norms = np.linalg.norm(y, axis=1)
        self._unit = (y / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
        self._popularity = scaled_to_max(self.popularity_)
        self._item_index = None

    # -- querying ------------------------------------------------------------------------
    def user_vector(self, history: Sequence[str]) -> np.ndarray | None:
        """The user factor solved from ``history``; ``None`` if no history item is known."""
        self.check_fitted()
        index = self.item_index()
        known = [index[h] for h in history if h in index]
        if not known:
            return None
        rows, counts = np.unique(np.asarray(known, dtype=np.int64), return_counts=True)
        confidence = float(self.alpha) * counts.astype(np.float64)
        y_h = self.item_factors_[rows].astype(np.float64)  # the small solve runs in float64
        a = self._gram + (y_h.T * (confidence - 1.0)) @ y_h
        b = y_h.T @ confidence
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:  # singular only with regularization=0 and a degenerate history
            return np.linalg.lstsq(a, b, rcond=None)[0]

    def score(self, history: Sequence[str]) -> np.ndarray:
        """Dot products of item factors with the user vector solved from the history."""
        self.check_fitted()
        x = self.user_vector(history)
        if x is None:
            return self._popularity.copy()
        # float32 matrix-vector product: half the memory traffic of float64, which is what it costs.
        return (self.item_factors_ @ x.astype(np.float32) + self.item_bias_).astype(np.float64)

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items with the most similar factors (cosine), without ``item_id`` itself."""
        self.check_fitted()
        position = self.item_index().get(str(item_id))
        if position is None:
            return []
        sims = self._unit @ self._unit[position]
        sims[position] = -np.inf
        k = min(max(k, 0), len(sims) - 1)
        if k == 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(str(self.item_ids_[i]), float(sims[i])) for i in top]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "item_factors": self.item_factors_,
            "item_bias": self.item_bias_,
            "popularity": self.popularity_,
        }
        return arrays, {"n_items": len(self.item_ids_)}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
        self.item_bias_ = arrays["item_bias"].astype(np.float32)
        self.popularity_ = arrays["popularity"].astype(np.float64)
        if len(self.item_factors_) != len(self.item_ids_) or state.get("n_items") != len(self.item_ids_):
            raise ModelFileError("ALS model arrays are inconsistent (item factors do not match item ids)")
        self._derive()
