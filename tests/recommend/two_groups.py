"""Small synthetic shops shared by the candidate-source tests (no files, no network)."""

from __future__ import annotations

import numpy as np

from shoplm.recommend.base import Interactions

GROUP_A = [f"a{i}" for i in range(10)]
GROUP_B = [f"b{i}" for i in range(10)]


def two_groups(
    users_per_group: int = 40, events_per_user: int = 8, seed: int = 0, items_per_group: int = 10
) -> Interactions:
    """Users of group A only touch ``a*`` items, users of group B only ``b*`` items."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    catalogs = ([f"a{i}" for i in range(items_per_group)], [f"b{i}" for i in range(items_per_group)])
    for group, catalog in zip(("A", "B"), catalogs, strict=True):
        for u in range(users_per_group):
            chosen = rng.choice(catalog, size=events_per_user, replace=True)
            start = int(rng.integers(0, 10**9))
            for step, item in enumerate(chosen):
                users.append(f"{group}{u}")
                items.append(str(item))
                ts.append(start + 60_000 * step)
    return Interactions.from_arrays(users, items, ts)


def group_share(ranked: list[tuple[str, float]], prefix: str) -> float:
    """Fraction of the recommended items whose id starts with ``prefix``."""
    return sum(item.startswith(prefix) for item, _ in ranked) / max(len(ranked), 1)
