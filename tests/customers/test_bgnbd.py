"""BG/NBD and Gamma-Gamma: likelihood, parameter recovery, predictions, CLV, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.customers.bgnbd import BetaGeoModel, GammaGammaModel, bgnbd_log_likelihood, customer_lifetime_value
from shoplm.customers.value import lifetime_values
from shoplm.errors import InputError
from tests.customers.synthetic import simulate_bgnbd
from tests.estimator_contract import EstimatorContract

X, TX, T = simulate_bgnbd(1500, r=0.25, alpha=4.0, a=0.8, b=2.5, T=39.0, seed=1)


class TestBetaGeoContract(EstimatorContract):
    def make_estimator(self) -> BetaGeoModel:
        return BetaGeoModel(n_starts=1)

    def fit_estimator(self, estimator: BetaGeoModel) -> BetaGeoModel:
        return estimator.fit(X[:300], TX[:300], T[:300])

    def probe(self, estimator: BetaGeoModel) -> np.ndarray:
        x, t_x, age = X[:20], TX[:20], T[:20]
        alive = estimator.probability_alive(x, t_x, age)
        return np.concatenate([alive, estimator.expected_purchases(10.0, x, t_x, age)])


class TestGammaGammaContract(EstimatorContract):
    def make_estimator(self) -> GammaGammaModel:
        return GammaGammaModel(n_starts=1)

    def fit_estimator(self, estimator: GammaGammaModel) -> GammaGammaModel:
        rng = np.random.default_rng(0)
        return estimator.fit(rng.integers(0, 6, 200), rng.gamma(5.0, 6.0, 200))

    def probe(self, estimator: GammaGammaModel) -> np.ndarray:
        return estimator.expected_spend([0, 1, 5], [0.0, 30.0, 30.0])


def test_likelihood_of_a_silent_customer_has_its_closed_form() -> None:
    # x = 0: the customer is alive and silent with probability (alpha / (alpha + T))^r.
    ll = bgnbd_log_likelihood((0.5, 3.0, 1.0, 2.0), np.array([0.0]), np.array([0.0]), np.array([10.0]))
    assert ll[0] == pytest.approx(0.5 * np.log(3.0 / 13.0))


def test_recovers_the_parameters_it_was_simulated_with() -> None:
    model = BetaGeoModel().fit(X, TX, T)
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.35), name
    # The fitted model reproduces the mean repeat count it was fitted on.
    assert model.expected_purchases_new_customer(39.0) == pytest.approx(X.mean(), rel=0.05)


def test_conditional_prediction_of_a_newcomer_equals_the_unconditional_one() -> None:
    model = BetaGeoModel(n_starts=1).fit(X, TX, T)
    for t in (1.0, 13.0, 52.0):
        conditional = model.expected_purchases(t, [0], [0.0], [0.0])[0]
        assert conditional == pytest.approx(float(model.expected_purchases_new_customer(t)), rel=1e-6)


def test_silence_lowers_p_alive_and_expected_purchases() -> None:
    model = BetaGeoModel(n_starts=1).fit(X, TX, T)
    recent, stale = model.probability_alive([4, 4], [38.0, 5.0], [39.0, 39.0])
    assert 0 < stale < recent <= 1
    assert model.probability_alive([0], [0.0], [39.0])[0] == 1.0
    more, fewer = model.expected_purchases(20.0, [4, 4], [38.0, 5.0], [39.0, 39.0])
    assert fewer < more
    silent = model.probability_no_purchase(20.0, [4, 4], [38.0, 5.0], [39.0, 39.0])
    assert 0 < silent[0] < silent[1] < 1


def test_gamma_gamma_shrinks_few_transactions_toward_the_mean() -> None:
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 10, 400)
    spend = rng.gamma(6.0, 5.0, 400)
    model = GammaGammaModel().fit(frequency, spend)
    population = float(model.expected_spend([0], [0.0])[0])
    assert population == pytest.approx(spend.mean(), rel=0.15)
    one, many = model.expected_spend([1, 50], [100.0, 100.0])
    assert population < one < many < 100.0


def test_lifetime_value_grows_with_horizon_and_shrinks_with_discount() -> None:
    purchases = BetaGeoModel(n_starts=1).fit(X, TX, T)
    spend = GammaGammaModel(n_starts=1).fit([1, 2, 3, 4, 5], [10.0, 20.0, 15.0, 30.0, 25.0])
    args = ([3, 0], [30.0, 0.0], [39.0, 39.0], [20.0, 0.0])
    year = customer_lifetime_value(purchases, spend, *args, periods=12)
    two_years = customer_lifetime_value(purchases, spend, *args, periods=24)
    discounted = customer_lifetime_value(purchases, spend, *args, periods=12, discount_rate=0.1)
    assert (year > 0).all() and (two_years > year).all() and (discounted < year).all()
    assert year[0] > year[1]  # the active repeat buyer is worth more than a one-off buyer


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="recency ≤ T"):
        BetaGeoModel().fit([1], [10.0], [5.0])
    with pytest.raises(InputError, match="no customer"):
        BetaGeoModel().fit([], [], [])
    with pytest.raises(InputError, match="finite"):
        BetaGeoModel().fit([1], [float("nan")], [5.0])
    with pytest.raises(InputError, match="at least 2 customers"):
        GammaGammaModel().fit([0, 0, 3], [0.0, 0.0, 10.0])


def test_lifetime_values_from_a_frame_net_of_returns() -> None:
    rng = np.random.default_rng(5)
    rows = [
        (f"c{c}", pd.Timestamp("2011-01-01") + pd.Timedelta(days=int(d)), float(rng.uniform(10, 60)))
        for c in range(80)
        for d in rng.choice(150, 1 + c % 5, replace=False)
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(is_return=False)
    table = lifetime_values(frame, "2011-06-30")
    assert len(table) == 80 and (table["clv"] > 0).all()
    assert table["expected_spend"].nunique() > 1  # Gamma-Gamma, not the fallback
    repeat = table.index[table["frequency"] > 0][0]
    last_day = frame.loc[frame["customer_id"] == repeat, "timestamp"].max()
    spent = frame.loc[(frame["customer_id"] == repeat) & (frame["timestamp"] == last_day), "amount"].sum()
    # The customer sends back everything bought on their last day: less kept, less value.
    when = last_day + pd.Timedelta(hours=1)
    back = pd.DataFrame({"customer_id": [repeat], "timestamp": [when], "amount": [-spent], "is_return": [True]})
    net = lifetime_values(pd.concat([frame, back]), "2011-06-30")
    assert net.loc[repeat, "monetary_value"] < table.loc[repeat, "monetary_value"]
    assert net.loc[repeat, "clv"] < table.loc[repeat, "clv"]


def test_lifetime_values_fallback_and_refusal() -> None:
    days = pd.to_datetime(["2011-01-01", "2011-01-20", "2011-02-10", "2011-01-05", "2011-01-03"])
    frame = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"], "timestamp": days, "amount": [30.0] * 4 + [20.0]})
    # A single repeat buyer: Gamma-Gamma cannot be fitted, the mean spend per purchase day stands in.
    table = lifetime_values(frame, "2011-02-28")
    assert table["expected_spend"].tolist() == [pytest.approx(140.0 / 5)] * 3
    assert table.loc["a", "clv"] > table.loc["b", "clv"] > 0
    with pytest.raises(InputError, match="bought twice"):
        lifetime_values(frame[frame["customer_id"] != "a"], "2011-02-28")
