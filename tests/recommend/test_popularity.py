"""PopularityRecommender: time decay, weights, categories, cold start, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.recommend import Interactions, PopularityRecommender
from tests.estimator_contract import EstimatorContract
from tests.recommend.two_groups import GROUP_A, GROUP_B, two_groups

DAY_MS = 86_400_000
CATEGORIES = {**{i: "shoes" for i in GROUP_A}, **{i: "hats" for i in GROUP_B}}


class TestPopularityContract(EstimatorContract):
    def make_estimator(self) -> PopularityRecommender:
        return PopularityRecommender(half_life_days=7.0, by_category=True)

    def fit_estimator(self, estimator: PopularityRecommender) -> PopularityRecommender:
        return estimator.fit(two_groups(users_per_group=5), item_category=CATEGORIES)

    def probe(self, estimator: PopularityRecommender) -> np.ndarray:
        return np.concatenate([estimator.score([]), estimator.score(["a1", "b2", "a3"])])


def test_old_burst_ranks_below_recent_one() -> None:
    # 30 events on "old" 60 days ago, 10 on "new" today: with a 14-day half-life, new wins.
    now = 100 * DAY_MS
    users = [f"u{i}" for i in range(40)]
    items = ["old"] * 30 + ["new"] * 10
    ts = [now - 60 * DAY_MS] * 30 + [now] * 10
    model = PopularityRecommender(half_life_days=14.0).fit(Interactions.from_arrays(users, items, ts))
    assert [item for item, _ in model.top(2)] == ["new", "old"]
    # Without decay to speak of, the bigger burst wins.
    slow = PopularityRecommender(half_life_days=10_000.0).fit(Interactions.from_arrays(users, items, ts))
    assert slow.top(1)[0][0] == "old"


def test_weights_count() -> None:
    data = Interactions.from_arrays(["u1", "u2", "u3"], ["viewed", "viewed", "bought"], [0, 0, 0], [1.0, 1.0, 5.0])
    assert PopularityRecommender().fit(data).top(1) == [("bought", 1.0)]


def test_by_category_pulls_toward_history_categories() -> None:
    # Hats are globally more popular, but a shoe shopper should see shoes first.
    users, items = [], []
    for i in range(30):
        users.append(f"h{i}")
        items.append(GROUP_B[i % 3])
    for i in range(10):
        users.append(f"s{i}")
        items.append(GROUP_A[i % 2])
    data = Interactions.from_arrays(users, items)
    model = PopularityRecommender(by_category=True).fit(data, item_category=CATEGORIES)
    assert model.recommend([], k=1)[0][0].startswith("b")
    top = model.recommend(["a5", "a1"], k=2)
    assert all(item.startswith("a") for item, _ in top)
    assert sorted(item for item, _ in model.top(5, category="shoes")) == ["a0", "a1"]
    assert model.top(3, category="no-such-category") == []
    # Without by_category the history is ignored.
    plain = PopularityRecommender().fit(data)
    np.testing.assert_array_equal(plain.score(["a5", "a1"]), plain.score([]))


def test_unknown_history_gets_cold_start_scores() -> None:
    model = PopularityRecommender(by_category=True).fit(two_groups(5), item_category=CATEGORIES)
    cold = model.score([])
    np.testing.assert_array_equal(model.score(["never-seen", "nor-this"]), cold)
    assert np.isfinite(cold).all() and cold.max() == 1.0


def test_bad_input_is_refused_early() -> None:
    empty = Interactions.from_arrays([], [])
    with pytest.raises(InputError, match="no interactions"):
        PopularityRecommender().fit(empty)
    with pytest.raises(InputError, match="item_category"):
        PopularityRecommender(by_category=True).fit(two_groups(2))
    with pytest.raises(InputError, match="half_life_days"):
        PopularityRecommender(half_life_days=0).fit(two_groups(2))
    bad = Interactions.from_arrays(["u"], ["i"], [0], [float("nan")])
    with pytest.raises(InputError, match="finite"):
        PopularityRecommender().fit(bad)
