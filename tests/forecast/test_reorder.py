"""Reorder advice (safety stock, reorder point, newsvendor) and the order-up-to simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from shoplm.errors import InputError
from shoplm.forecast.reorder import reorder_advice, simulate_order_up_to

WEEKS = pd.date_range("2024-01-06", periods=4, freq="W-SAT")


def forecast_frame(mean: float = 10.0, half_width: float = 3.92) -> pd.DataFrame:
    rows = [("a", w, mean, mean - half_width, mean + half_width) for w in WEEKS]
    rows += [("b", w, 2 * mean, 0.0, 4 * mean) for w in WEEKS]
    return pd.DataFrame(rows, columns=["unique_id", "ds", "mean", "lo-95", "hi-95"])


def test_safety_stock_and_reorder_point_follow_the_normal_quantiles() -> None:
    advice = reorder_advice(forecast_frame(), lead_time=2, review=1, service_level=0.9).set_index("unique_id")
    sigma_week = 3.92 / 1.959964
    assert advice.at["a", "demand_mean"] == pytest.approx(30.0)
    assert advice.at["a", "demand_std"] == pytest.approx(np.sqrt(3) * sigma_week)
    assert advice.at["a", "safety_stock"] == pytest.approx(norm.ppf(0.9) * np.sqrt(3) * sigma_week)
    assert advice.at["a", "reorder_point"] == pytest.approx(20 + norm.ppf(0.9) * np.sqrt(2) * sigma_week)
    assert advice.at["b", "safety_stock"] > advice.at["a", "safety_stock"]  # wider interval, more stock
    stricter = reorder_advice(forecast_frame(), lead_time=2, review=1, service_level=0.99).set_index("unique_id")
    assert (stricter["safety_stock"] > advice["safety_stock"]).all()


def test_order_tops_up_to_the_level_and_newsvendor_follows_the_margin() -> None:
    advice = reorder_advice(forecast_frame(), on_hand={"a": 12.0, "b": 1000.0}).set_index("unique_id")
    assert advice.at["a", "order"] == np.ceil(advice.at["a", "order_up_to"] - 12.0)
    assert advice.at["b", "order"] == 0.0
    assert advice["newsvendor"].isna().all()
    cheap = reorder_advice(forecast_frame(), unit_cost={"a": 9.0, "b": 9.0}, price={"a": 10.0, "b": 10.0})
    rich = reorder_advice(forecast_frame(), unit_cost={"a": 1.0, "b": 1.0}, price={"a": 10.0, "b": 10.0})
    assert (rich["newsvendor"] > cheap["newsvendor"]).all()
    assert (rich["newsvendor"] > rich["demand_mean"]).all()  # a 90% margin buys above the mean


def test_bad_advice_input() -> None:
    with pytest.raises(InputError, match="service level"):
        reorder_advice(forecast_frame(), service_level=1.2)
    with pytest.raises(InputError, match="fewer than lead time"):
        reorder_advice(forecast_frame(), lead_time=4, review=1)
    with pytest.raises(InputError, match="lacks columns: hi-95"):
        reorder_advice(forecast_frame().drop(columns=["hi-95"]))
    with pytest.raises(InputError, match="lead time"):
        reorder_advice(forecast_frame(), lead_time=-1)


def test_simulation_trace_and_lead_time() -> None:
    demand = np.array([[5.0], [5.0], [20.0], [0.0]])
    result = simulate_order_up_to(demand, np.full((4, 1), 10.0), lead_time=0)
    assert result.served == 20.0 and result.lost == 10.0 and result.stockout_weeks == 1
    # with a week of lead time the first top-up arrives a week later: more is lost
    late = simulate_order_up_to(demand, np.full((4, 1), 10.0), lead_time=1)
    assert late.lost > result.lost
    # higher targets: better fill, more stock
    rng = np.random.default_rng(0)
    noisy = rng.poisson(10, (30, 5)).astype(float)
    low, high = (simulate_order_up_to(noisy, np.full((30, 5), t), lead_time=1) for t in (15.0, 30.0))
    assert high.fill_rate > low.fill_rate and high.average_on_hand > low.average_on_hand
    with pytest.raises(InputError, match="same"):
        simulate_order_up_to(noisy, np.zeros((3, 5)))
