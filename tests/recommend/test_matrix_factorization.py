"""ALSRecommender: taste separation, fold-in of unseen histories, BPR, persistence."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before implicit (and ideally numpy) loads BLAS

import warnings

import numpy as np
import pytest
from scipy import sparse

from shoplm.errors import InputError
from shoplm.recommend import ALSRecommender, Interactions
from tests.estimator_contract import EstimatorContract
from tests.recommend.two_groups import group_share, two_groups


class TestALSContract(EstimatorContract):
    probe_atol = 1e-5

    def make_estimator(self) -> ALSRecommender:
        return ALSRecommender(factors=8, iterations=5)

    def fit_estimator(self, estimator: ALSRecommender) -> ALSRecommender:
        return estimator.fit(two_groups(users_per_group=5))

    def probe(self, estimator: ALSRecommender) -> np.ndarray:
        return np.concatenate([estimator.score([]), estimator.score(["a1", "b2", "a3"])])


class TestBPRContract(TestALSContract):
    def make_estimator(self) -> ALSRecommender:
        return ALSRecommender(factors=8, iterations=5, use_bpr=True)


@pytest.fixture(scope="module")
def als() -> ALSRecommender:
    # Sparse like a real shop (5 events per user, 30 items per group), so MF has structure to find.
    return ALSRecommender(factors=8, iterations=10).fit(two_groups(60, 5, items_per_group=30))


@pytest.mark.parametrize("history", [["a1", "a4", "a1"], ["a2"], ["a3", "a5", "a7", "a9"], ["b9", "b2"]])
def test_history_from_one_group_ranks_its_items_first(als: ALSRecommender, history: list[str]) -> None:
    # Histories no training user had exactly: the vector is solved at query time.
    group = history[0][0]
    scores = dict(zip(als.item_ids_.tolist(), als.score(history).tolist(), strict=True))
    own = [v for k, v in scores.items() if k[0] == group and k not in history]
    other = [v for k, v in scores.items() if k[0] != group]
    assert np.mean(own) > np.mean(other) + 0.1
    assert group_share(als.recommend(history, k=5, exclude_seen=True), group) >= 0.8


def test_similar_items_stay_in_group(als: ALSRecommender) -> None:
    assert group_share(als.similar_items("a2", 5), "a") >= 0.8
    assert "a2" not in dict(als.similar_items("a2", 59))
    assert len(als.similar_items("a2", 1000)) == 59


def test_bpr_separates_groups_too() -> None:
    data = two_groups(60, 5, items_per_group=30)
    model = ALSRecommender(factors=8, iterations=100, learning_rate=0.05, use_bpr=True).fit(data)
    assert group_share(model.recommend(["a1", "a4", "a6"], k=5, exclude_seen=True), "a") >= 0.8


def test_user_vector_matches_implicit_recalculate_user(als: ALSRecommender) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    reference = AlternatingLeastSquares(factors=8, regularization=als.regularization, alpha=als.alpha)
    reference.item_factors = als.item_factors_.copy()
    history = ["a1", "a4", "a4", "a7"]
    row = np.zeros(len(als.item_ids_), dtype=np.float32)
    for item in history:
        row[als.item_index()[item]] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # implicit's BLAS-threads hint
        expected = reference.recalculate_user(0, sparse.csr_matrix(row))
    np.testing.assert_allclose(als.user_vector(history), expected, atol=1e-4)


def test_cold_and_unknown_histories_never_raise(als: ALSRecommender) -> None:
    cold = als.score([])
    assert cold.shape == (60,) and np.isfinite(cold).all()
    np.testing.assert_array_equal(als.score(["never-seen"]), cold)
    np.testing.assert_allclose(als.score(["never-seen", "a1"]), als.score(["a1"]))
    assert als.similar_items("never-seen") == []


def test_fit_emits_no_blas_thread_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ALSRecommender(factors=4, iterations=2).fit(two_groups(3))


def test_bad_input_is_refused_early() -> None:
    with pytest.raises(InputError, match="no interactions"):
        ALSRecommender().fit(Interactions.from_arrays([], []))
    with pytest.raises(InputError, match="factors"):
        ALSRecommender(factors=0).fit(two_groups(2))
    with pytest.raises(InputError, match="weight 0"):
        ALSRecommender().fit(Interactions.from_arrays(["u"], ["i"], [0], [0.0]))
