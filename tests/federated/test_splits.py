"""Non-IID shop splits: deterministic, skewed by alpha, every shop non-empty, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.federated import dirichlet_split, split_summary

GROUPS = [f"g{i % 6}" for i in range(600)]


def _mean_top_share(alpha: float) -> float:
    shops = dirichlet_split(GROUPS, n_shops=5, alpha=alpha, seed=3)
    return float(np.mean([row["top_group_share"] for row in split_summary(shops, GROUPS, 5)]))


def test_same_seed_same_split_and_every_row_placed() -> None:
    a = dirichlet_split(GROUPS, n_shops=5, alpha=0.5, seed=7)
    b = dirichlet_split(GROUPS, n_shops=5, alpha=0.5, seed=7)
    assert a.tolist() == b.tolist()
    assert a.shape == (600,) and set(a.tolist()) == set(range(5))
    assert a.tolist() != dirichlet_split(GROUPS, n_shops=5, alpha=0.5, seed=8).tolist()


def test_small_alpha_gives_more_skewed_shops() -> None:
    # alpha 100 is near IID: each shop's largest group is about 1/6 of it; alpha 0.1 concentrates groups
    iid, skewed = _mean_top_share(100.0), _mean_top_share(0.1)
    assert iid < 0.3
    assert skewed > iid + 0.25


def test_min_rows_is_respected() -> None:
    shops = dirichlet_split(GROUPS, n_shops=5, alpha=0.1, seed=0, min_rows=40)
    assert np.bincount(shops, minlength=5).min() >= 40


def test_summary_counts_rows_and_groups() -> None:
    summary = split_summary(np.array([0, 0, 0, 1]), ["a", "a", "b", "b"], 2)
    assert summary[0] == {"shop": 0, "rows": 3, "groups": 2, "top_group": "a", "top_group_share": 0.6667}
    assert summary[1]["rows"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_shops": 0, "alpha": 1.0}, "at least 1"),
        ({"n_shops": 2, "alpha": 0.0}, "positive"),
        ({"n_shops": 2, "alpha": float("nan")}, "positive"),
        ({"n_shops": 700, "alpha": 1.0}, "cannot give"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        dirichlet_split(GROUPS, **kwargs)
