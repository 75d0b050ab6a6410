"""FraudScorer: the estimator contract, an obvious fraud ranked first and explained, quiet normal orders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError, NotFittedError
from shoplm.risk import FraudScorer, build_order_features
from tests.estimator_contract import EstimatorContract
from tests.risk.shop import FRAUD_ORDER, small_shop


def shop_features(n_users: int = 50, seed: int = 0, *, with_fraud: bool = True) -> pd.DataFrame:
    shop = small_shop(n_users, seed, with_fraud=with_fraud)
    return build_order_features(
        shop["orders"], shop["lines"], users=shop["users"], events=shop["events"], items=shop["items"]
    )


FEATURES = shop_features()


class TestFraudScorerContract(EstimatorContract):
    def make_estimator(self) -> FraudScorer:
        return FraudScorer(n_estimators=20, combine="max", rule_weight=0.5, currency="CNY")

    def fit_estimator(self, estimator: FraudScorer) -> FraudScorer:
        return estimator.fit(FEATURES)

    def probe(self, estimator: FraudScorer) -> np.ndarray:
        return np.concatenate([estimator.score(FEATURES), [estimator.threshold_, estimator.high_value_amount_]])


def test_obvious_fraud_ranks_first_and_says_why() -> None:
    scorer = FraudScorer(n_estimators=50, currency="CNY").fit(FEATURES)
    scores = pd.Series(scorer.score(FEATURES), index=FEATURES.index)
    assert scores.idxmax() == FRAUD_ORDER
    alerts = scorer.alerts(FEATURES)
    assert alerts[0]["order_id"] == FRAUD_ORDER and alerts[0]["user_id"] == "thief"
    assert len(alerts) <= max(2, round(0.05 * len(FEATURES)))  # a 1% alert rate, not everyone
    rules = {rule["name"]: rule["text"] for rule in alerts[0]["rules"]}
    assert set(rules) == {"new_account_high_value", "country_mismatch"}
    assert rules["new_account_high_value"].startswith("first order 2 h after the account was created, total 4,000 CNY")
    assert rules["country_mismatch"] == "ships to GB, the account's country is CN"
    named = alerts[0]["features"]
    assert {"max_line_units", "units"} & set(named)
    assert named.get("units", {"value": 8})["value"] == 8
    json.dumps(alerts)  # JSON-ready for the alert store


def test_normal_orders_fire_no_rule() -> None:
    normal = shop_features(40, seed=1, with_fraud=False)
    scorer = FraudScorer(n_estimators=20).fit(normal)
    assert not scorer.rule_hits(normal).any()
    explained = scorer.explain(normal.iloc[:5])
    assert all(entry["rules"] == [] for entry in explained)


def test_rules_add_points_and_detectors_can_be_chosen() -> None:
    only_rules = FraudScorer(detectors="", rule_weight=1.0).fit(FEATURES)
    points = only_rules.score(FEATURES)
    assert points[FEATURES.index.get_loc(FRAUD_ORDER)] == 2.0 and np.sort(points)[-2] == 0.0
    ecod = FraudScorer(detectors="ecod", rule_weight=0.0).fit(FEATURES)
    assert set(ecod.detector_scores(FEATURES)) == {"ecod"}
    z = ecod.detector_scores(FEATURES)["ecod"]
    # Standardised on the training orders, scored the same way.
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2


def test_new_orders_are_scored_with_the_history_model() -> None:
    history = shop_features(50, seed=2, with_fraud=False)
    scorer = FraudScorer(n_estimators=20).fit(history)
    fresh = FEATURES.loc[[FRAUD_ORDER, FEATURES.index[0]]]
    scores = scorer.score(fresh)
    assert scores[0] > scorer.threshold_ > scores[1]
    assert [a["order_id"] for a in scorer.alerts(fresh)] == [FRAUD_ORDER]


def test_bad_input_is_refused() -> None:
    with pytest.raises(NotFittedError):
        FraudScorer().score(FEATURES)
    with pytest.raises(InputError, match="detectors must be among"):
        FraudScorer(detectors="ecod,lof").fit(FEATURES)
    with pytest.raises(InputError, match="combine"):
        FraudScorer(combine="median").fit(FEATURES)
    with pytest.raises(InputError, match="lacks"):
        FraudScorer().fit(FEATURES.drop(columns="units"))
    with pytest.raises(InputError, match="at least 20 orders"):
        FraudScorer().fit(FEATURES.iloc[:5])
    with pytest.raises(InputError, match="alert_rate"):
        FraudScorer(alert_rate=2.0).fit(FEATURES)
