"""Non-IID splits of one data set into shops: each row (an utterance, a user) goes to one shop.

Federated benchmarks need shops that differ the way real shops do: one sells mostly toys and
hears mostly delivery questions, another mostly refunds. :func:`dirichlet_split` draws, for each
group (an intent category, a user's favourite item category), the shares of the shops from a
Dirichlet(α) distribution and deals the group's rows out in those shares. Small α (0.1) gives
shops that see almost only their own groups; large α (100) an almost uniform, IID split. This
is the usual label-skew partition of the federated-learning literature (Hsu et al. 2019).

Example:
    >>> shops = dirichlet_split(["a"] * 6 + ["b"] * 6, n_shops=2, alpha=100.0, seed=0)
    >>> sorted(np.bincount(shops).tolist())
    [6, 6]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shoplm.errors import InputError

__all__ = ["dirichlet_split", "split_summary"]


def dirichlet_split(
    groups: Sequence[Any] | np.ndarray,
    *,
    n_shops: int,
    alpha: float,
    seed: int = 0,
    min_rows: int = 1,
) -> np.ndarray:
    """The shop (``0..n_shops-1``) of each row, skewed by group with Dirichlet(``alpha``) shares.

    Each group's rows are shuffled and cut in the proportions drawn for that group, so a shop's
    group mix follows its draws. Draws are repeated (up to 100 times, with the next seeds) until
    every shop holds at least ``min_rows`` rows: a shop without data is no shop.

    Args:
        groups: one group label per row (any hashable values).
        n_shops: number of shops (>= 1).
        alpha: Dirichlet concentration (> 0); smaller is more skewed.
        seed: seed of the draws and the shuffles; the same seed gives the same split.
        min_rows: the least rows a shop must get.

    Returns:
        ``(n_rows,)`` int array of shop indices.

    Raises:
        InputError: ``n_shops`` < 1, ``alpha`` not a positive finite number, or fewer rows than
            ``n_shops * min_rows`` (or no split found that gives every shop ``min_rows``).

    Example:
        >>> dirichlet_split(["x", "y", "x", "y"], n_shops=2, alpha=0.5, seed=1).shape
        (4,)
    """
    labels = np.asarray(groups)
    if n_shops < 1:
        raise InputError(f"the number of shops must be at least 1, got {n_shops}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise InputError(f"the Dirichlet alpha must be a positive number, got {alpha}")
    if len(labels) < n_shops * min_rows:
        raise InputError(f"{len(labels)} rows cannot give {n_shops} shops {min_rows} row(s) each")
    _, codes = np.unique(labels, return_inverse=True)
    for attempt in range(100):
        rng = np.random.default_rng(seed + attempt)
        shops = np.empty(len(labels), dtype=np.int64)
        for group in range(codes.max() + 1):
            rows = np.flatnonzero(codes == group)
            rows = rows[rng.permutation(len(rows))]
            shares = rng.dirichlet(np.full(n_shops, float(alpha)))
            cuts = np.round(np.cumsum(shares)[:-1] * len(rows)).astype(np.int64)
            for shop, part in enumerate(np.split(rows, cuts)):
                shops[part] = shop
        if np.bincount(shops, minlength=n_shops).min() >= min_rows:
            return shops
    raise InputError(
        f"no Dirichlet(alpha={alpha}) split in 100 draws gave each of {n_shops} shops {min_rows} rows; raise alpha"
    )


def split_summary(shops: np.ndarray, groups: Sequence[Any] | np.ndarray, n_shops: int) -> list[dict[str, Any]]:
    """Per shop: its rows, its number of distinct groups and the share of its largest group.

    Example:
        >>> split_summary(np.array([0, 0, 1]), ["a", "b", "a"], 2)[1]
        {'shop': 1, 'rows': 1, 'groups': 1, 'top_group': 'a', 'top_group_share': 1.0}
    """
    labels = np.asarray(groups)
    out = []
    for shop in range(n_shops):
        mine = labels[shops == shop]
        values, counts = np.unique(mine, return_counts=True)
        top = int(counts.argmax()) if len(counts) else None
        out.append(
            {
                "shop": shop,
                "rows": len(mine),
                "groups": len(values),
                "top_group": None if top is None else values[top].item(),
                "top_group_share": round(float(counts[top] / len(mine)), 4) if top is not None else 0.0,
            }
        )
    return out
