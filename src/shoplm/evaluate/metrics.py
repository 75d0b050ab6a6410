"""Top-k metrics computed from the rank of the target under FULL ranking.

The *rank* of a target is the number of items that score strictly higher than it, plus
(under the default pessimistic rule) the number of OTHER items that score exactly the same.
So rank 0 means "first". Ties are counted against the model on purpose: a model that scores
everything equal (or ``-inf``) must not look good, and the result does not depend on the
order in which items happen to be stored. ``ties="optimistic"`` counts strictly higher
items only, ``ties="mean"`` counts half of the ties.

With the rank ``r`` of each target (one target per test case):

- ``HR@k``   = mean of ``[r < k]``
- ``NDCG@k`` = mean of ``[r < k] / log2(r + 2)``  (one relevant item, so IDCG = 1)
- ``MRR@k``  = mean of ``[r < k] / (r + 1)``

Example:
    >>> import numpy as np
    >>> scores = np.array([0.1, 0.9, 0.5, 0.5])
    >>> rank_of_target(scores, 2)        # 0.9 is higher, 0.5 ties -> pessimistic
    2
    >>> round(ndcg([0, 2], k=5), 4)      # (1 + 1/log2(4)) / 2
    0.75
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
TieRule = Literal["pessimistic", "optimistic", "mean"]


def rank_of_target(scores: np.ndarray, target: int, *, ties: TieRule = "pessimistic") -> float:
    """Rank (0 = best) of item ``target`` among all of ``scores``; see the module doc for ties.

    NaN scores count as ``-inf``. Returns an ``int`` for the pessimistic and optimistic rules.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    t = s[target]
    higher = int(np.count_nonzero(s > t))
    if ties == "optimistic":
        return higher
    equal = int(np.count_nonzero(s == t)) - 1  # the target itself is not a tie
    if ties == "pessimistic":
        return higher + equal
    if ties == "mean":
        return higher + equal / 2.0
    raise ValueError(f"unknown tie rule {ties!r}")


def ranks_of_targets(scores: np.ndarray, targets: Sequence[int], *, ties: TieRule = "pessimistic") -> np.ndarray:
    """Vectorized :func:`rank_of_target` for a (cases x items) score matrix and one target per row."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    idx = np.asarray(targets, dtype=np.int64)
    t = s[np.arange(len(idx)), idx][:, None]
    higher = (s > t).sum(axis=1)
    if ties == "optimistic":
        return higher
    equal = (s == t).sum(axis=1) - 1
    if ties == "pessimistic":
        return higher + equal
    if ties == "mean":
        return higher + equal / 2.0
    raise ValueError(f"unknown tie rule {ties!r}")


def _ranks(ranks: Iterable[float]) -> np.ndarray:
    r = np.asarray(list(ranks) if not isinstance(ranks, np.ndarray) else ranks, dtype=np.float64)
    if r.size and (r < 0).any():
        raise ValueError("ranks must be >= 0")
    return r


def hit_rate(ranks: Iterable[float], k: int) -> float:
    """HR@k: share of targets ranked in the top ``k`` (rank < k)."""
    r = _ranks(ranks)
    return float((r < k).mean()) if r.size else 0.0


def ndcg(ranks: Iterable[float], k: int) -> float:
    """NDCG@k with one relevant item per case: mean of 1/log2(rank + 2) over hits, 0 otherwise."""
    r = _ranks(ranks)
    if not r.size:
        return 0.0
    return float(np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0).mean())


def mrr(ranks: Iterable[float], k: int) -> float:
    """MRR@k: mean of 1/(rank + 1) over hits in the top ``k``, 0 otherwise."""
    r = _ranks(ranks)
    if not r.size:
        return 0.0
    return float(np.where(r < k, 1.0 / (r + 1.0), 0.0).mean())


def ranking_metrics(ranks: Iterable[float], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``{"HR@k", "NDCG@k", "MRR@k"}`` for every ``k`` of ``ks``, from target ranks."""
    r = _ranks(ranks)
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate(r, k)
        out[f"NDCG@{k}"] = ndcg(r, k)
        out[f"MRR@{k}"] = mrr(r, k)
    return out


def catalog_coverage(recommended: Iterable[Iterable[object]], n_items: int) -> float:
    """Share of the catalog (``n_items``) that appears in at least one recommendation list."""
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    seen: set[object] = set()
    for items in recommended:
        seen.update(items)
    return len(seen) / n_items
