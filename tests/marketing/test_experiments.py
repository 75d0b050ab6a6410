"""A/B test logic: assignment by hash, per-user outcomes, intervals, the mSPRT and its benchmark."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from shoplm.errors import InputError
from shoplm.marketing.experiments import (
    Arm,
    arm_report,
    assign,
    daily_series,
    exposure_scene,
    msprt_lambda,
    msprt_p_values,
    parse_exposure_scene,
    user_outcomes,
    validate_arms,
)
from shoplm.marketing.experiments_bench import run_experiments_benchmark, simulate

STRATEGIES = {"default", "popular"}
ARMS = validate_arms([Arm("control", "default", 50), Arm("treatment", "popular", 50)], STRATEGIES)


def test_assignment_is_deterministic_and_follows_the_split() -> None:
    arms = validate_arms([Arm("a", "default", 20), Arm("b", "popular", 80)], STRATEGIES)
    users = [f"u{i}" for i in range(20_000)]
    first = [assign("exp1", u, arms).name for u in users]
    assert first == [assign("exp1", u, arms).name for u in users]  # the same user, the same arm
    share_b = first.count("b") / len(first)
    assert abs(share_b - 0.8) < 0.015  # 3.5 standard errors of a binomial share
    # Another experiment reshuffles users independently of this one.
    other = [assign("exp2", u, arms).name for u in users]
    both_b = sum(x == y == "b" for x, y in zip(first, other, strict=True)) / len(users)
    assert abs(both_b - 0.64) < 0.02


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ([Arm("control", "default", 100)], "at least two arms"),
        ([Arm("a", "default", 50), Arm("a", "popular", 50)], "duplicate arm name"),
        ([Arm("a", "default", 50), Arm("b", "magic", 50)], "unknown strategy 'magic'"),
        ([Arm("a", "default", -10), Arm("b", "popular", 110)], "positive"),
        ([Arm("a", "default", 50), Arm("b", "popular", 40)], "sum to 100"),
        ([Arm("A b", "default", 50), Arm("b", "popular", 50)], "arm name"),
        ([Arm("a", "default", float("nan")), Arm("b", "popular", 50)], "positive"),
    ],
)
def test_bad_arms_are_refused_with_the_reason(arms: list[Arm], message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_arms(arms, STRATEGIES)


def test_weights_in_shares_of_one_are_accepted() -> None:
    assert [
        a.weight
        for a in validate_arms(
            [
                {"name": "a", "strategy": "default", "weight": 0.25},
                {"name": "b", "strategy": "popular", "weight": 0.75},
            ],
            STRATEGIES,
        )
    ] == [
        0.25,
        0.75,
    ]


def test_exposure_scenes_round_trip_and_fit_the_column() -> None:
    assert parse_exposure_scene(exposure_scene("1a2b3c4d", "treatment")) == ("1a2b3c4d", "treatment")
    assert parse_exposure_scene("home") is None and parse_exposure_scene("exp:only") is None
    with pytest.raises(InputError, match="longer than 32"):
        exposure_scene("1a2b3c4d", "x" * 25)


def test_outcomes_count_only_after_the_first_exposure_and_before_the_stop() -> None:
    exposures = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "arm": ["control", "control", "treatment", "treatment"],
            "ts_ms": [100, 500, 200, 300],
        }
    )
    outcomes = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "event_type": ["click", "purchase", "click", "purchase", "add_to_cart"],
            "ts_ms": [50, 150, 250, 1_000, 400],  # u1's click came before exposure; u2 bought after the stop
        }
    )
    users = user_outcomes(exposures, outcomes, stop_ms=900).set_index("user_id")
    assert users.loc["u1", "first_ms"] == 100 and math.isnan(users.loc["u1", "click_ms"])
    assert users.loc["u1", "purchase_ms"] == 150
    assert users.loc["u2", "click_ms"] == 250 and math.isnan(users.loc["u2", "purchase_ms"])
    assert users.loc["u3", "click_ms"] == 400  # an add-to-cart counts as engaging


def _users(rates: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    """arm -> (exposed, clickers, converters), exposed on day 0."""
    rows = []
    for arm, (n, clicks, buys) in rates.items():
        for i in range(n):
            rows.append(
                {
                    "user_id": f"{arm}{i}",
                    "arm": arm,
                    "first_ms": i,
                    "click_ms": float(i + 1) if i < clicks else np.nan,
                    "purchase_ms": float(i + 2) if i < buys else np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_no_traffic_reports_not_enough_data() -> None:
    empty = user_outcomes(pd.DataFrame(columns=["user_id", "arm", "ts_ms"]), pd.DataFrame())
    report = arm_report(empty, ARMS)
    assert not report["enough_data"] and report["summary"].startswith("not enough data")
    assert all(a["exposed"] == 0 and a["ctr"]["value"] is None and a["sequential"] is None for a in report["arms"])
    little = arm_report(_users({"control": (5, 1, 0), "treatment": (30, 3, 1)}), ARMS, min_exposed=20)
    assert not little["enough_data"] and little["arms"][1]["difference"] is None


def test_report_intervals_difference_and_sequential_test() -> None:
    users = _users({"control": (2000, 200, 40), "treatment": (2000, 320, 44)})
    report = arm_report(users, ARMS)
    control, treatment = report["arms"]
    assert report["enough_data"] and control["control"] and treatment["exposed"] == 2000
    low, high = proportion_confint(320, 2000, alpha=0.05, method="wilson")
    assert treatment["ctr"] == pytest.approx({"value": 0.16, "low": low, "high": high})
    ctr = treatment["difference"]["ctr"]
    assert ctr["value"] == pytest.approx(0.06) and ctr["low"] > 0  # a 6-point lift: clear
    assert treatment["sequential"]["ctr"]["significant"] and treatment["sequential"]["ctr"]["verdict"] == (
        "better than control"
    )
    conversion = treatment["sequential"]["conversion"]
    assert not conversion["significant"] and conversion["verdict"] == "no difference shown yet"
    assert treatment["difference"]["conversion"]["low"] < 0 < treatment["difference"]["conversion"]["high"]


def test_msprt_matches_johari_et_al_for_balanced_normal_data() -> None:
    # Their statistic for n pairs with per-observation variance sigma^2 (V = 2 sigma^2 for the difference).
    n, p_t, p_c, tau2 = 1000, 0.13, 0.10, 0.02**2
    pooled = (p_t + p_c) / 2
    big_v = 2 * pooled * (1 - pooled)
    delta = p_t - p_c
    expected = math.sqrt(big_v / (big_v + n * tau2)) * math.exp(
        n**2 * tau2 * delta**2 / (2 * big_v * (big_v + n * tau2))
    )
    assert float(msprt_lambda(p_t * n, n, p_c * n, n, tau2)) == pytest.approx(expected)
    assert float(msprt_lambda(0, 0, 5, 10)) == 1.0  # an empty arm: no evidence


def test_msprt_keeps_type_one_error_under_peeking_where_naive_tests_do_not() -> None:
    st, sc, n = simulate(0.0, runs=400, seed=11, looks=60)
    always_valid = (msprt_p_values(st, n, sc, n) <= 0.05).any(axis=1).mean()
    from scipy.stats import norm

    pooled = (st + sc) / (2 * n)
    z = (st - sc) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    naive = (2 * norm.sf(np.abs(z)) <= 0.05).any(axis=1).mean()
    assert always_valid <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 400)
    assert naive > 0.15  # peeking 60 times inflates a 5% test several-fold
    p = msprt_p_values(st, n, sc, n)
    assert np.all(np.diff(p, axis=1) <= 0)  # always-valid p-values never go up


def test_daily_series_is_cumulative_per_arm() -> None:
    day = 86_400_000
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "arm": ["control", "treatment", "control"],
            "first_ms": [0, 10, day + 5],
            "click_ms": [5.0, np.nan, np.nan],
            "purchase_ms": [np.nan] * 3,
        }
    )
    series = daily_series(users, ARMS)
    assert [d["arms"]["control"] for d in series] == [{"exposed": 1, "rate": 1.0}, {"exposed": 2, "rate": 0.5}]
    assert series[0]["arms"]["treatment"] == {"exposed": 1, "rate": 0.0}
    with pytest.raises(InputError):
        daily_series(users, ARMS, metric="revenue")


def test_benchmark_writes_json_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "experiments.json"
    report = run_experiments_benchmark(out, runs=60, seed=5)
    saved = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert saved["tau2"] == report["tau2"] and set(saved["type_i_error"]) == {"naive_peeking", "fixed_horizon", "msprt"}
    assert saved["type_i_error"]["naive_peeking"] > saved["type_i_error"]["msprt"]
    assert saved["power"]["0.02"]["msprt"] > saved["power"]["0.005"]["msprt"]
