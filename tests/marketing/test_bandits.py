"""The creative bandit: Beta-Bernoulli Thompson sampling, its estimator contract, and the replay evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.marketing.bandit_bench import read_impression_log, run_bandit_benchmark
from shoplm.marketing.bandits import (
    EpsilonGreedyPolicy,
    OraclePolicy,
    ThompsonBandit,
    ThompsonPolicy,
    UniformPolicy,
    best_arms,
    replay,
)
from tests.estimator_contract import EstimatorContract


class TestThompsonBanditContract(EstimatorContract):
    def make_estimator(self) -> ThompsonBandit:
        return ThompsonBandit(prior_alpha=1.0, prior_beta=2.0, seed=3)

    def fit_estimator(self, estimator: ThompsonBandit) -> ThompsonBandit:
        return estimator.fit(["I1", "I1", "I1", "I2"], ["0", "1", "1", "0"], [1, 0, 1, 0])

    def probe(self, estimator: ThompsonBandit) -> np.ndarray:
        rows = [p for key in ("I1", "I2") for p in estimator.posterior(key, ["0", "1"])]
        return np.array([[p.alpha, p.beta, p.mean, p.low, p.high, p.p_best] for p in rows])


def _uniform_log(
    rates: dict[str, list[float]], n: int, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A log whose arm is uniform at random, with the true rate of every arm in every event."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(sorted(rates), size=n).tolist()
    probabilities = np.array([rates[k] for k in keys])
    logged = rng.integers(0, probabilities.shape[1], n)
    clicks = (rng.random(n) < probabilities[np.arange(n), logged]).astype(float)
    return keys, logged, clicks, probabilities


def test_posteriors_count_clicks_and_favour_the_better_arm() -> None:
    bandit = ThompsonBandit(seed=0).fit(
        ["I1"] * 300, ["a"] * 100 + ["b"] * 200, [1] * 30 + [0] * 70 + [1] * 10 + [0] * 190
    )
    a, b = bandit.posterior("I1")
    assert (a.impressions, a.clicks, b.impressions, b.clicks) == (100, 30, 200, 10)
    assert a.low < a.mean < a.high and a.mean == pytest.approx(31 / 102)
    assert a.p_best > 0.99 and a.p_best + b.p_best == pytest.approx(1.0)
    assert sum(bandit.choose("I1") == "a" for _ in range(200)) > 190
    assert bandit.choose("new", ["x", "y"]) in {"x", "y"}  # an unseen key draws from the prior


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="between 0 and 1"):
        ThompsonBandit().fit(["I1"], ["a"], [2])
    with pytest.raises(InputError, match="differ in length"):
        ThompsonBandit().fit(["I1", "I2"], ["a"], [1])
    with pytest.raises(InputError, match="no arms"):
        ThompsonBandit().fit([], [], []).choose("I1")


def test_replay_thompson_beats_uniform_and_epsilon_greedy_learns() -> None:
    rates = {f"I{i}": [0.04, 0.08, 0.16] if i % 2 else [0.16, 0.04, 0.08] for i in range(4)}
    keys, logged, clicks, probabilities = _uniform_log(rates, 20_000)
    results = {
        policy.name.split("(")[0]: replay(policy, keys, logged, clicks, probabilities)
        for policy in (
            ThompsonPolicy(seed=1),
            UniformPolicy(seed=1),
            EpsilonGreedyPolicy(0.1, seed=1),
            OraclePolicy(best_arms(rates)),
        )
    }
    assert results["oracle"].regret == 0 and results["oracle"].ctr > 0.13
    # The uniform policy's replayed CTR is the log's (the replay is unbiased) ...
    assert results["uniform"].ctr == pytest.approx(np.mean([0.04, 0.08, 0.16]), abs=0.01)
    # ... and learning policies lose far less than uniform.
    assert results["thompson"].regret < 0.35 * results["uniform"].regret
    assert results["epsilon_greedy"].regret < 0.7 * results["uniform"].regret
    for result in results.values():
        assert 0.25 < result.kept / 20_000 < 0.42  # about one event in three is kept
        assert result.curve_regret == sorted(result.curve_regret)  # cumulative


def test_the_bench_reads_a_demo_impression_log_and_reports_every_policy(tmp_path: Path) -> None:
    # A tiny demo-shaped log: two items, two creatives, the truth file with the creative effects.
    rng = np.random.default_rng(0)
    effects = {"I1": [0.0, 1.0], "I2": [0.8, 0.0]}
    n = 4000
    items = rng.choice(["I1", "I2"], n)
    creative = rng.integers(0, 2, n)
    g = np.array([effects[i][c] for i, c in zip(items, creative, strict=True)])
    p = 1 / (1 + np.exp(-(-2.0 + g + rng.normal(0, 0.3, n))))
    log = pd.DataFrame(
        {"ts": np.arange(n), "item_id": items, "creative": creative, "clicked": rng.random(n) < p, "p_click": p}
    )
    for name in ("val", "s0"):
        (tmp_path / name).mkdir()
        log.to_parquet(tmp_path / name / "impressions.parquet")
        (tmp_path / name / "impressions_truth.json").write_text(json.dumps({"creative_effects": effects}))
    read = read_impression_log(tmp_path / "s0")
    np.testing.assert_allclose(read.probabilities[np.arange(n), read.logged], p, rtol=1e-6)
    assert read.best == {"I1": 1, "I2": 0}
    report = run_bandit_benchmark([tmp_path / "s0"], tmp_path / "out" / "bandit.json", validation=tmp_path / "val")
    assert set(report["policies"]) == {"thompson", "epsilon_greedy", "uniform", "oracle"}
    assert report["policies"]["oracle"]["regret_mean"] == 0
    assert report["policies"]["thompson"]["regret_mean"] < report["policies"]["uniform"]["regret_mean"]
    assert report["epsilon"] in (0.02, 0.05, 0.1, 0.2)
    assert (tmp_path / "out" / "bandit.png").stat().st_size > 1000
    with pytest.raises(InputError, match=r"no impressions\.parquet"):
        read_impression_log(tmp_path)


def test_posteriors_of_a_store_item_from_a_saved_bandit(tmp_path: Path) -> None:
    from shoplm.app.adcopy import creative_posteriors
    from shoplm.config import Settings
    from shoplm.errors import NotFoundError
    from shoplm.store import Store

    store = Store.open("sqlite://")
    item = {"item_id": ["I1"], "title": ["Mug"], "description": [""], "category": [""], "brand": [""]}
    extra = {"currency": [""], "language": [""], "attributes": ["{}"], "content_hash": ["h"], "updated_ms": [1]}
    store.upsert("items", pd.DataFrame({**item, **extra}))
    settings = Settings(data_dir=tmp_path)
    empty = creative_posteriors(store, settings, "I1")
    assert empty["arms"] == [] and "no impressions" in empty["message"]
    ThompsonBandit().fit(["I1"] * 3, ["0", "2", "2"], [0, 1, 1]).save(tmp_path / "bandit")
    found = creative_posteriors(store, settings, "I1", state=tmp_path / "bandit")
    assert [(a["arm"], a["style"], a["clicks"]) for a in found["arms"]] == [("0", "classic", 0), ("2", "price", 2)]
    assert found["best_arm"] == "2" and found["impressions"] == 3
    with pytest.raises(NotFoundError):
        creative_posteriors(store, settings, "NOPE", state=tmp_path / "bandit")
