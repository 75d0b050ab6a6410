"""Item-to-item co-occurrence: "customers who viewed this also viewed".

Two items co-occur when one user touched both within ``window`` consecutive events of
their time-ordered sequence (and, with ``session_gap_minutes``, within one session). Each
user counts a pair once, so one obsessive user cannot make a pair popular. Counts are
normalized (cosine by default) and only the ``max_neighbors`` best neighbors of each item
are kept, as a CSR table that is cheap to store and to read: scoring a history touches
only the neighbor lists of its last items, so it takes microseconds even for a large
catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from shoplm.errors import InputError, ModelFileError
from shoplm.recommend.base import CandidateSource, Interactions, scaled_to_max
from shoplm.recommend.popularity import _check_interactions

if TYPE_CHECKING:
    from scipy import sparse

SIMILARITIES = ("cosine", "jaccard", "lift")
#: popularity share added to every score so items without co-occurrence evidence still rank sensibly
_TIE_BREAK = 1e-6


def _recency_weights(known: list[int], decay: float) -> dict[int, float]:
    """Item index -> summed weight, the newest history item weighing 1, the one before ``decay``..."""
    weights: dict[int, float] = {}
    last = len(known) - 1
    for position, item in enumerate(known):
        weights[item] = weights.get(item, 0.0) + decay ** (last - position)
    return weights


class CooccurrenceRecommender(CandidateSource):
    """Sparse top-N item-to-item neighbors from co-occurrence within a sliding window.

    ``score(history)`` sums the neighbor scores of the last ``max_history`` known items of
    the history, the newest weighing 1, the one before ``recency_decay``, then
    ``recency_decay**2``... An empty or unknown history gets popularity (distinct users per
    item, scaled to [0, 1]).

    Example:
        >>> data = Interactions.from_arrays(["u1", "u1", "u2", "u2"], ["a", "b", "a", "b"])
        >>> model = CooccurrenceRecommender(min_count=1).fit(data)
        >>> model.similar("a", 1)
        [('b', 1.0)]
    """

    # Non-neighbours only carry the 1e-6 popularity tie-break.
    signal_floor = 1e-4

    def __init__(
        self,
        window: int = 5,
        max_neighbors: int = 100,
        min_count: int = 2,
        similarity: str = "cosine",
        session_gap_minutes: float | None = None,
        recency_decay: float = 0.8,
        max_history: int = 50,
    ) -> None:
        self.window = window
        self.max_neighbors = max_neighbors
        self.min_count = min_count
        self.similarity = similarity
        self.session_gap_minutes = session_gap_minutes
        self.recency_decay = recency_decay
        self.max_history = max_history

    def _check_params(self) -> None:
        for name in ("window", "max_neighbors", "min_count", "max_history"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.similarity not in SIMILARITIES:
            raise InputError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if not 0 < self.recency_decay <= 1:
            raise InputError(f"recency_decay must be in (0, 1], got {self.recency_decay!r}")
        if self.session_gap_minutes is not None and not self.session_gap_minutes > 0:
            raise InputError(f"session_gap_minutes must be positive or None, got {self.session_gap_minutes!r}")

    # -- learning ------------------------------------------------------------------------
    def fit(self, interactions: Interactions, **_: Any) -> Self:
        """Count co-occurring pairs (each user once per pair), normalize, keep the top neighbors."""
        _check_interactions(interactions)
        self._check_params()
        keep = interactions.weight > 0  # weight 0 means "not a signal of interest"
        if not keep.any():
            raise InputError("every interaction has weight 0: nothing to learn from")
        users, item_col, ts = interactions.user_id[keep], interactions.item_id[keep], interactions.ts_ms[keep]
        items, codes = np.unique(item_col, return_inverse=True)
        n_items = len(items)
        codes = codes.astype(np.int64)
        # Rows are sorted by (user, time): a user code is the running count of user changes.
        new_user = np.concatenate([[True], users[1:] != users[:-1]])
        user_code = np.cumsum(new_user) - 1
        n_users = int(user_code[-1]) + 1
        sequence = user_code
        if self.session_gap_minutes is not None:
            gap = np.concatenate([[False], np.diff(ts) > self.session_gap_minutes * 60_000])
            sequence = np.cumsum(new_user | gap) - 1

        # Pairs (a, b) at distance 1..window inside one sequence, as unordered (lo, hi).
        lo_parts, hi_parts, user_parts = [], [], []
        for d in range(1, min(int(self.window), len(codes) - 1) + 1):
            a, b = codes[:-d], codes[d:]
            mask = (sequence[:-d] == sequence[d:]) & (a != b)
            lo_parts.append(np.minimum(a[mask], b[mask]))
            hi_parts.append(np.maximum(a[mask], b[mask]))
            user_parts.append(user_code[:-d][mask])
        lo = np.concatenate(lo_parts) if lo_parts else np.empty(0, np.int64)
        hi = np.concatenate(hi_parts) if hi_parts else np.empty(0, np.int64)
        pair_user = np.concatenate(user_parts) if user_parts else np.empty(0, np.int64)
        if n_users * n_items * n_items < 2**62:
            key = np.unique((pair_user * n_items + lo) * n_items + hi)
            lo, hi = (key // n_items) % n_items, key % n_items
        else:  # too many ids for one int64 key
            unique_rows = np.unique(np.stack([pair_user, lo, hi], axis=1), axis=0)
            lo, hi = unique_rows[:, 1], unique_rows[:, 2]

        # Distinct users per item: the item "size" for normalizing and the cold-start ranking.
        user_item = np.unique(user_code * n_items + codes)
        item_users = np.bincount(user_item % n_items, minlength=n_items).astype(np.float64)

        from scipy import sparse  # training only: serving reads the saved CSR arrays

        upper = sparse.coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(n_items, n_items)).tocsr()
        upper.sum_duplicates()
        counts = (upper + upper.T).tocoo()
        strong = counts.data >= self.min_count
        row, col, count = counts.row[strong], counts.col[strong], counts.data[strong]
        size_r, size_c = item_users[row], item_users[col]
        if self.similarity == "cosine":
            value = count / np.sqrt(size_r * size_c)
        elif self.similarity == "jaccard":
            value = count / (size_r + size_c - count)
        else:  # lift: how much more often than chance the pair occurs
            value = count * n_users / (size_r * size_c)

        # Keep each row's best max_neighbors, stored best first (so similar() is a slice).
        order = np.lexsort((col, -value, row))
        row, col, value = row[order], col[order], value[order]
        row_start = np.searchsorted(row, np.arange(n_items))
        rank = np.arange(len(row)) - row_start[row]
        top = rank < self.max_neighbors
        row, col, value = row[top], col[top], value[top]

        self.item_ids_ = items.astype(str)
        self.indptr_ = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n_items))]).astype(np.int64)
        self.indices_ = col.astype(np.int32)
        self.data_ = value.astype(np.float32)
        self.item_users_ = item_users.astype(np.float32)
        self.n_users_ = n_users
        self._derive()
        return self

    def _derive(self) -> None:
        self._popularity = scaled_to_max(self.item_users_)
        self._item_index = None

    # -- querying ------------------------------------------------------------------------
    def _known(self, history: Sequence[str]) -> list[int]:
        index = self.item_index()
        known = [index[h] for h in history if h in index]
        return known[-int(self.max_history) :]

    def score(self, history: Sequence[str]) -> np.ndarray:
        """Recency-weighted sum of the neighbor scores of the history's last items."""
        self.check_fitted()
        known = self._known(history)
        if not known:
            return self._popularity.copy()
        scores = _TIE_BREAK * self._popularity
        indptr, indices, data = self.indptr_, self.indices_, self.data_
        for item, weight in _recency_weights(known, float(self.recency_decay)).items():
            start, end = indptr[item], indptr[item + 1]
            # one row holds each neighbor once, so fancy-index += is safe (no np.add.at needed)
            scores[indices[start:end]] += weight * data[start:end]
        return scores

    def similar(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items most often together with ``item_id``, best first; ``[]`` for an unknown item."""
        self.check_fitted()
        position = self.item_index().get(str(item_id))
        if position is None:
            return []
        start = int(self.indptr_[position])
        end = min(int(self.indptr_[position + 1]), start + max(k, 0))
        neighbors = zip(self.indices_[start:end], self.data_[start:end], strict=True)
        return [(str(self.item_ids_[j]), float(v)) for j, v in neighbors]

    def neighbor_matrix(self) -> sparse.csr_matrix:
        """The neighbor table as a scipy CSR matrix (items x items)."""
        self.check_fitted()
        from scipy import sparse

        n = len(self.item_ids_)
        return sparse.csr_matrix((self.data_, self.indices_, self.indptr_), shape=(n, n))

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "indptr": self.indptr_,
            "indices": self.indices_,
            "data": self.data_,
            "item_users": self.item_users_,
        }
        return arrays, {"n_users": self.n_users_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.indptr_ = arrays["indptr"].astype(np.int64)
        self.indices_ = arrays["indices"].astype(np.int32)
        self.data_ = arrays["data"].astype(np.float32)
        self.item_users_ = arrays["item_users"].astype(np.float32)
        self.n_users_ = int(state["n_users"])
        if len(self.indptr_) != len(self.item_ids_) + 1 or self.indptr_[-1] != len(self.indices_):
            raise ModelFileError("co-occurrence model arrays are inconsistent (indptr does not match indices)")
        self._derive()
