"""The forecast estimators under the shared contract, and their behaviour on small data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.forecast.coldstart import ColdStartForecaster
from shoplm.forecast.ensemble import EnsembleSelector
from shoplm.forecast.models import GlobalDemandModel
from tests.estimator_contract import EstimatorContract

DS = pd.date_range("2024-01-06", periods=30, freq="W-SAT")


def demand_frame(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    levels = {"a": 5, "b": 20, "c": 60}
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": DS, "y": rng.poisson(level, len(DS)).astype(float)})
        for uid, level in levels.items()
    ]
    statics = pd.DataFrame({"log_price": [0.5, 1.0, 2.0], "category": [0.0, 0.0, 1.0]}, index=list(levels))
    return pd.concat(frames, ignore_index=True), statics


def validation_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 3000
    y = rng.poisson(10, n).astype(float)
    return pd.DataFrame(
        {
            "y": y,
            "close": y + rng.normal(0, 1, n),
            "far": y + 6.0,
            "scale": 2.0,
            "series_class": np.where(np.arange(n) % 3 == 0, "lumpy", "smooth"),
            "step": np.tile([1, 2, 3], n // 3),
        }
    )


class TestGlobalDemandModelContract(EstimatorContract):
    def make_estimator(self) -> GlobalDemandModel:
        return GlobalDemandModel(n_estimators=15, num_leaves=7, lags=[1, 2], windows=[4])

    def fit_estimator(self, estimator: GlobalDemandModel) -> GlobalDemandModel:
        demand, statics = demand_frame()
        return estimator.fit(demand, statics, freq="W-SAT")

    def probe(self, estimator: GlobalDemandModel) -> np.ndarray:
        demand, statics = demand_frame()
        return estimator.predict(demand, statics, horizon=3)["LightGBM"].to_numpy()


class TestEnsembleSelectorContract(EstimatorContract):
    def make_estimator(self) -> EnsembleSelector:
        return EnsembleSelector(candidates=["close", "far"], levels=[80, 95])

    def fit_estimator(self, estimator: EnsembleSelector) -> EnsembleSelector:
        return estimator.fit(validation_frame())

    def probe(self, estimator: EnsembleSelector) -> np.ndarray:
        return estimator.predict(validation_frame(1))[["mean", "lo-80", "hi-80", "lo-95", "hi-95"]].to_numpy().ravel()


class TestColdStartContract(EstimatorContract):
    def make_estimator(self) -> ColdStartForecaster:
        return ColdStartForecaster(n_neighbors=2)

    def fit_estimator(self, estimator: ColdStartForecaster) -> ColdStartForecaster:
        vectors = np.eye(4, dtype=np.float32)
        return estimator.fit(["a", "b", "c", "d"], vectors, ["x", "x", "y", "y"], [10.0, 20.0, 1.0, 3.0])

    def probe(self, estimator: ColdStartForecaster) -> np.ndarray:
        query = np.array([[0.8, 0.2, 0.0, 0.0], [0.0, 0.0, 0.1, 0.9]], dtype=np.float32)
        return np.r_[estimator.predict(query, ["x", "y"]), estimator.category_mean(["x", "y", "z"])]


def test_global_model_tracks_levels_and_refuses_other_features() -> None:
    demand, statics = demand_frame()
    model = GlobalDemandModel(n_estimators=60).fit(demand, statics, freq="W-SAT")
    out = model.predict(demand, statics, horizon=4).groupby("unique_id")["LightGBM"].mean()
    assert out["a"] < out["b"] < out["c"]
    assert abs(out["c"] - 60) < 15
    with pytest.raises(InputError, match="static features"):
        model.predict(demand, statics.drop(columns=["category"]), horizon=2)
    with pytest.raises(InputError, match="no static features"):
        model.predict(demand, statics.drop(index=["a"]), horizon=2)
    with pytest.raises(InputError, match="all zeros"):
        GlobalDemandModel().fit(demand.assign(y=0.0), statics, freq="W-SAT")


def test_selector_chooses_per_class_and_covers_nominally() -> None:
    frame = validation_frame()
    frame.loc[frame["series_class"] == "lumpy", "far"] = frame["y"]  # far is perfect on lumpy series
    selector = EnsembleSelector(candidates=["close", "far"]).fit(frame)
    assert selector.members("smooth") == ["close"]
    assert selector.members("lumpy") == ["far"]
    assert selector.members("never-seen") == selector.choice_["all"]
    fresh = validation_frame(2)
    out = selector.predict(fresh[fresh["series_class"] == "smooth"])
    actual = fresh.loc[out.index, "y"]
    coverage = ((out["lo-80"] <= actual) & (actual <= out["hi-80"])).mean()
    assert 0.7 < coverage < 0.9
    assert (out["lo-95"] <= out["lo-80"]).all() and (out["hi-80"] <= out["hi-95"]).all()
    # a step beyond the validated ones widens the interval
    smooth_row = fresh[fresh["series_class"] == "smooth"].iloc[:1]
    far_step = smooth_row.assign(step=12)
    near_step = smooth_row.assign(step=3)
    width = lambda o: float(o["hi-95"].iloc[0] - o["lo-95"].iloc[0])  # noqa: E731
    assert width(selector.predict(far_step)) > width(selector.predict(near_step))


def test_selector_bad_input() -> None:
    with pytest.raises(InputError, match="lacks columns"):
        EnsembleSelector(candidates=["nope"]).fit(validation_frame())
    with pytest.raises(InputError, match="positive scale"):
        EnsembleSelector(candidates=["close"]).fit(validation_frame().assign(scale=0.0))


def test_cold_start_prefers_same_category_neighbours() -> None:
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    model = ColdStartForecaster(n_neighbors=1).fit(["a", "b", "c"], vectors, ["x", "y", "y"], [100.0, 7.0, 3.0])
    # nearest overall is "a" (other category); within "y" it is "b"
    assert model.predict(np.array([[1.0, 0.0]]), ["y"]).tolist() == [7.0]
    with pytest.raises(InputError, match="at least one established"):
        ColdStartForecaster().fit([], np.zeros((0, 2)), [], [])
