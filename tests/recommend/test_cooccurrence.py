"""CooccurrenceRecommender: neighbors, windows, sessions, recency, speed, persistence."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.recommend import CooccurrenceRecommender, Interactions
from tests.estimator_contract import EstimatorContract
from tests.recommend.two_groups import group_share, two_groups


class TestCooccurrenceContract(EstimatorContract):
    def make_estimator(self) -> CooccurrenceRecommender:
        return CooccurrenceRecommender(window=3, max_neighbors=5, min_count=1)

    def fit_estimator(self, estimator: CooccurrenceRecommender) -> CooccurrenceRecommender:
        return estimator.fit(two_groups(users_per_group=5))

    def probe(self, estimator: CooccurrenceRecommender) -> np.ndarray:
        return np.concatenate([estimator.score([]), estimator.score(["a1", "b2", "a3"])])


@pytest.mark.parametrize("similarity", ["cosine", "jaccard", "lift"])
def test_history_from_group_a_ranks_a_items_first(similarity: str) -> None:
    model = CooccurrenceRecommender(similarity=similarity).fit(two_groups())
    assert group_share(model.recommend(["a1", "a2"], k=8, exclude_seen=True), "a") == 1.0
    assert group_share(model.recommend(["b7"], k=8), "b") == 1.0
    assert all(item.startswith("a") for item, _ in model.similar("a3", 5))


def test_newest_history_item_counts_most() -> None:
    model = CooccurrenceRecommender(recency_decay=0.5).fit(two_groups())
    # Old A taste, fresh B interest: the fresh one leads, and the other way round.
    assert group_share(model.recommend(["a1", "b3"], k=5, exclude_seen=True), "b") == 1.0
    assert group_share(model.recommend(["b3", "a1"], k=5, exclude_seen=True), "a") == 1.0
    # Without decay, order does not matter.
    flat = CooccurrenceRecommender(recency_decay=1.0).fit(two_groups())
    np.testing.assert_allclose(flat.score(["a1", "b3"]), flat.score(["b3", "a1"]))


def test_window_and_min_count_and_max_neighbors() -> None:
    # Each user: x, filler, filler, y. Window 2 never sees (x, y); window 3 does.
    users, items = [], []
    for u in range(3):
        for item in ("x", f"f{u}", f"g{u}", "y"):
            users.append(f"u{u}")
            items.append(item)
    data = Interactions.from_arrays(users, items)
    assert "y" not in dict(CooccurrenceRecommender(window=2, min_count=1).fit(data).similar("x", 10))
    assert "y" in dict(CooccurrenceRecommender(window=3, min_count=1).fit(data).similar("x", 10))
    # x-y co-occurs for 3 users, x-f0 for one: min_count=2 keeps only y.
    assert CooccurrenceRecommender(window=3, min_count=2).fit(data).similar("x", 10) == [("y", 1.0)]
    capped = CooccurrenceRecommender(window=3, min_count=1, max_neighbors=2).fit(data)
    assert np.diff(capped.indptr_).max() <= 2
    assert capped.similar("x", 1)[0][0] == "y"  # the strongest neighbor survives the cap


def test_a_user_counts_a_pair_once() -> None:
    # One user alternating p, q forty times must not outweigh two users pairing p with r.
    users = ["loop"] * 80 + ["u1", "u1", "u2", "u2"]
    items = ["p", "q"] * 40 + ["p", "r", "p", "r"]
    model = CooccurrenceRecommender(min_count=1, similarity="jaccard").fit(Interactions.from_arrays(users, items))
    assert model.similar("p", 1)[0][0] == "r"


def test_sessions_split_on_time_gaps() -> None:
    hour = 3_600_000
    users = ["u1", "u1", "u2", "u2"]
    items = ["m", "n", "m", "n"]
    ts = [0, 5 * hour, 0, 5 * hour]
    data = Interactions.from_arrays(users, items, ts)
    assert CooccurrenceRecommender(min_count=1).fit(data).similar("m") == [("n", 1.0)]
    assert CooccurrenceRecommender(min_count=1, session_gap_minutes=30).fit(data).similar("m") == []


def test_cold_and_unknown_histories_never_raise() -> None:
    model = CooccurrenceRecommender().fit(two_groups())
    cold = model.score([])
    assert cold.shape == (20,) and np.isfinite(cold).all()
    np.testing.assert_array_equal(model.score(["unknown-1", "unknown-2"]), cold)
    # Unknown items inside a known history are just skipped.
    np.testing.assert_array_equal(model.score(["unknown", "a1"]), model.score(["a1"]))
    assert model.similar("unknown") == []
    assert len(model.recommend(["unknown"], k=3)) == 3


def test_bad_input_is_refused_early() -> None:
    with pytest.raises(InputError, match="no interactions"):
        CooccurrenceRecommender().fit(Interactions.from_arrays([], []))
    with pytest.raises(InputError, match="window"):
        CooccurrenceRecommender(window=0).fit(two_groups(2))
    with pytest.raises(InputError, match="similarity"):
        CooccurrenceRecommender(similarity="pearson").fit(two_groups(2))


def test_fast_on_a_realistic_size() -> None:
    # 200k events over 20k items: fit in seconds, score well under a millisecond.
    rng = np.random.default_rng(1)
    n = 200_000
    users = rng.integers(0, 20_000, n).astype(str)
    items = (rng.zipf(1.3, n) % 20_000).astype(str)
    data = Interactions.from_arrays(users, items, rng.integers(0, 10**10, n))
    start = time.perf_counter()
    model = CooccurrenceRecommender().fit(data)
    assert time.perf_counter() - start < 10.0  # generous: CI machines are shared
    history = data.item_id[:30].tolist()
    model.score(history)
    start = time.perf_counter()
    for _ in range(200):
        model.score(history)
    assert (time.perf_counter() - start) / 200 < 2e-3
