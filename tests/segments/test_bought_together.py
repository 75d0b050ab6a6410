"""The "bought together" candidate source: basket rules from interactions, in the registry."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.recommend.base import Interactions
from shoplm.recommend.bought_together import BoughtTogetherRecommender
from shoplm.recommend.components import SOURCES, TrainingInputs
from tests.estimator_contract import EstimatorContract

MINUTE_MS = 60_000
DAY_MS = 86_400_000


def orders(n_users: int = 30, seed: int = 0) -> Interactions:
    """Each user places 3 orders a day apart: one holds A and B, the others two random fillers.

    Lines of one order share their time (as an invoice's do); purchases weigh 5, views 1.
    """
    rng = np.random.default_rng(seed)
    users, items, ts, weights = [], [], [], []
    fillers = [f"f{i}" for i in range(12)]
    for u in range(n_users):
        baskets = [["A", "B"], list(rng.choice(fillers, 2, replace=False)), list(rng.choice(fillers, 2, replace=False))]
        rng.shuffle(baskets)
        for day, basket in enumerate(baskets):
            for item in basket:
                users.append(f"u{u}")
                items.append(str(item))
                ts.append(day * DAY_MS)
                weights.append(5.0)
        # A view of "V" next to every purchase: not a purchase, so never in a basket.
        users.append(f"u{u}")
        items.append("V")
        ts.append(3 * DAY_MS)
        weights.append(1.0)
    return Interactions.from_arrays(users, items, ts, weights)


class TestBoughtTogetherContract(EstimatorContract):
    def make_estimator(self) -> BoughtTogetherRecommender:
        return BoughtTogetherRecommender(min_support=0.05, min_confidence=0.1)

    def fit_estimator(self, estimator: BoughtTogetherRecommender) -> BoughtTogetherRecommender:
        return estimator.fit(orders())

    def probe(self, estimator: BoughtTogetherRecommender) -> np.ndarray:
        return np.concatenate([estimator.score(["A"]), estimator.score([]), estimator.score(["f1", "f2"])])


def test_it_proposes_b_after_a() -> None:
    model = BoughtTogetherRecommender(min_support=0.05).fit(orders())
    best, score = model.recommend(["f3", "A"], k=1, exclude_seen=True)[0]
    assert best == "B" and score == pytest.approx(1.0, abs=1e-4)  # every basket with A holds B
    assert model.recommend(["B"], k=1, exclude_seen=True)[0][0] == "A"
    consequent, confidence, lift = model.rules("A", 1)[0]
    assert consequent == "B" and confidence == pytest.approx(1.0) and lift > 1
    assert "V" not in set(model.item_ids_)  # views are weaker than purchases: no basket holds them


def test_baskets_follow_time_gaps_and_size() -> None:
    model = BoughtTogetherRecommender()
    # Two orders of one user a day apart are two baskets; one order's lines share a basket.
    data = Interactions.from_arrays(["u"] * 4, ["A", "B", "C", "D"], [0, 0, DAY_MS, DAY_MS + MINUTE_MS])
    basket, _ = model.baskets(data)
    assert basket.tolist() == [0, 0, 1, 1]
    # Times that are only positions (one long session) are cut into baskets of max_basket events.
    positions = Interactions.from_arrays(["u"] * 5 + ["w"] * 2, list("abcdeab"))
    basket, _ = BoughtTogetherRecommender(max_basket=2).baskets(positions)
    assert basket.tolist() == [0, 0, 1, 1, 2, 3, 3]


def test_unknown_or_empty_history_gets_popularity() -> None:
    model = BoughtTogetherRecommender(min_support=0.05).fit(orders())
    cold = model.score([])
    np.testing.assert_array_equal(model.score(["never-seen"]), cold)
    assert cold.max() == 1.0 and cold[model.item_index()["A"]] == 1.0  # A is in every user's orders
    # An item no rule reaches from A keeps only the tie-break: below the signal floor.
    assert model.score(["A"])[model.item_index()["f1"]] < model.signal_floor


def test_registered_as_a_source_fitted_from_training_inputs() -> None:
    component = SOURCES["bought_together"]
    assert component.anchored and component.scenes["cart"] > 0 and component.refresh
    fitted = component.fit(TrainingInputs(interactions=orders(n_users=60)))
    assert isinstance(fitted, BoughtTogetherRecommender)
    assert fitted.recommend(["A"], k=1, exclude_seen=True)[0][0] == "B"


def test_bad_settings_and_data_are_refused() -> None:
    with pytest.raises(InputError, match="no interactions"):
        BoughtTogetherRecommender().fit(Interactions.from_arrays([], []))
    with pytest.raises(InputError, match="min_support"):
        BoughtTogetherRecommender(min_support=2.0).fit(orders())
    with pytest.raises(InputError, match="max_len"):
        BoughtTogetherRecommender(max_len=1).fit(orders())


def test_no_rule_at_all_still_scores_saves_and_loads(tmp_path) -> None:
    # Every user bought one item once: no basket holds two items, so no rule.
    data = Interactions.from_arrays(["u1", "u2", "u3"], ["a", "b", "a"], [0, 0, 0], [5.0, 5.0, 5.0])
    model = BoughtTogetherRecommender().fit(data)
    assert len(model.indices_) == 0 and model.rules("a") == []
    loaded = BoughtTogetherRecommender.load(model.save(tmp_path / "empty"))
    np.testing.assert_array_equal(loaded.score(["a"]), model.score(["a"]))
    assert loaded.recommend([], k=1)[0][0] == "a"  # the best seller, for a cold start
