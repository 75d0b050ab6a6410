"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shoplm.evaluate import catalog_coverage, hit_rate, mrr, ndcg, rank_of_target, ranking_metrics
from shoplm.evaluate.metrics import ranks_of_targets


def test_rank_counts_strictly_higher_and_ties_pessimistically() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.3])
    assert rank_of_target(scores, 1) == 0
    assert rank_of_target(scores, 2) == 2  # 0.9 higher + one tie
    assert rank_of_target(scores, 2, ties="optimistic") == 1
    assert rank_of_target(scores, 2, ties="mean") == 1.5
    assert rank_of_target(scores, 0) == 4


def test_all_equal_scores_rank_last() -> None:
    assert rank_of_target(np.zeros(10), 3) == 9
    assert rank_of_target(np.full(4, -np.inf), 0) == 3


def test_nan_counts_as_minus_infinity() -> None:
    scores = np.array([np.nan, 1.0, 2.0])
    assert rank_of_target(scores, 1) == 1
    assert rank_of_target(scores, 0) == 2


def test_vectorized_ranks_match_scalar() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(6, 9)).astype(float)
    targets = rng.integers(0, 9, size=6)
    expected = [rank_of_target(scores[i], int(targets[i])) for i in range(6)]
    assert ranks_of_targets(scores, targets).tolist() == expected


def test_ndcg_hand_values() -> None:
    assert ndcg([0], 5) == 1.0
    assert ndcg([2], 5) == pytest.approx(1 / math.log2(4)) == pytest.approx(0.5)
    assert ndcg([1], 5) == pytest.approx(1 / math.log2(3))
    assert ndcg([5], 5) == 0.0  # rank 5 is the sixth place
    assert ndcg([0, 2, 30], 20) == pytest.approx((1 + 0.5 + 0) / 3)


def test_hit_rate_hand_values() -> None:
    assert hit_rate([5], 5) == 0.0
    assert hit_rate([4], 5) == 1.0
    assert hit_rate([0, 4, 5, 100], 5) == 0.5
    assert hit_rate([], 5) == 0.0


def test_mrr_hand_values() -> None:
    assert mrr([0], 10) == 1.0
    assert mrr([3], 10) == 0.25
    assert mrr([3, 10], 10) == 0.125


def test_ranking_metrics_keys() -> None:
    out = ranking_metrics([0, 7, 15, 40])
    assert set(out) == {f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    assert out["HR@5"] == 0.25
    assert out["HR@10"] == 0.5
    assert out["HR@20"] == 0.75
    assert out["NDCG@10"] == pytest.approx((1 + 1 / math.log2(9)) / 4)


def test_negative_rank_is_refused() -> None:
    with pytest.raises(ValueError):
        hit_rate([-1], 5)


def test_catalog_coverage() -> None:
    assert catalog_coverage([["a", "b"], ["b", "c"]], 6) == 0.5
    assert catalog_coverage([], 3) == 0.0
    with pytest.raises(ValueError):
        catalog_coverage([["a"]], 0)
