"""The forecasting models: statsforecast's local models and a global LightGBM model (mlforecast).

Local models (statsforecast, refit on the fly at every forecast, so nothing of theirs is saved):
SeasonalNaive, AutoETS, AutoARIMA, and CrostonOptimized, TSB and IMAPA for intermittent demand.
Weekly seasonality (52 weeks) is used only for a series with at least two full seasons
(104 weeks) of history; otherwise ``season_length=1`` (one year holds a single season, from
which a seasonal pattern cannot be told from noise), and SeasonalNaive is then the plain naive
forecast. numba compiles statsforecast's models on their first use in a process (some seconds).

The global model, :class:`GlobalDemandModel`, is one LightGBM regressor over every series, with
lags, rolling means and deviations, calendar (week of year, month), price and the item's text
embedding (reduced by PCA) as features, built by mlforecast and forecast recursively. It is an
:class:`~shoplm.estimator.Estimator`: what it learned (the booster, as LightGBM's text model) is
saved without pickle and needs only a demand history to forecast again.

Example:
    >>> season_length(60), season_length(110)
    (1, 52)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator

STAT_MODELS = ("SeasonalNaive", "AutoETS", "AutoARIMA", "CrostonOptimized", "TSB", "IMAPA")
SEASON = 52
GLOBAL_MODEL = "LightGBM"


def season_length(n_weeks: int) -> int:
    """52 when a series holds two full seasons of weekly history, else 1 (no seasonality)."""
    return SEASON if n_weeks >= 2 * SEASON else 1


def _stat_model(name: str, season: int) -> Any:
    from statsforecast import models

    if name == "SeasonalNaive":
        return models.SeasonalNaive(season_length=season)
    if name == "AutoETS":
        return models.AutoETS(season_length=season)
    if name == "AutoARIMA":
        # approximation: the stepwise search on conditional sums of squares, about 0.15 s a series
        return models.AutoARIMA(season_length=season, approximation=True)
    if name == "CrostonOptimized":
        return models.CrostonOptimized()
    if name == "TSB":
        return models.TSB(alpha_d=0.1, alpha_p=0.1)
    if name == "IMAPA":
        return models.IMAPA()
    raise InputError(f"unknown model {name!r}; known: {', '.join(STAT_MODELS)}")


def statistical_forecasts(
    demand: pd.DataFrame, horizon: int, freq: str, models: Sequence[str], *, levels: Sequence[int] = ()
) -> pd.DataFrame:
    """Forecasts of statsforecast models for every series of ``demand``, clipped at 0.

    Args:
        demand: long frame ``unique_id, ds, y`` (each series without gaps).
        horizon: weeks ahead.
        freq: the frequency of ``ds``.
        models: names from :data:`STAT_MODELS`.
        levels: model-based interval levels to add (columns ``<model>-lo-<level>``, ``-hi-``).

    Returns:
        Frame ``unique_id, ds`` and one column per model. A model that fails on a series (too
        short for it) falls back to the naive forecast for that series.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    lengths = demand.groupby("unique_id", sort=False)["y"].transform("size")
    parts = []
    for season in sorted({season_length(int(n)) for n in lengths.unique()}):
        subset = demand[lengths.map(season_length) == season]
        runner = StatsForecast(
            models=[_stat_model(name, season) for name in models], freq=freq, n_jobs=1, fallback_model=Naive()
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ARIMA's optimizer convergence notes, one per series
            parts.append(runner.forecast(df=subset[["unique_id", "ds", "y"]], h=horizon, level=list(levels) or None))
    out = pd.concat(parts, ignore_index=True)
    values = [c for c in out.columns if c not in ("unique_id", "ds")]
    out[values] = out[values].clip(lower=0).fillna(0.0)
    return out


def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    """ISO week number of each date (a calendar feature of the global model)."""
    return dates.isocalendar().week.to_numpy().astype(np.int64)


class _FittedBooster:
    """A LightGBM booster behind the ``predict`` method mlforecast calls (so a loaded one forecasts)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def fit(self, X: Any, y: Any) -> _FittedBooster:
        raise NotImplementedError("a loaded booster is not refitted")

    def predict(self, X: Any) -> np.ndarray:
        return self.booster.predict(X)


class GlobalDemandModel(Estimator):
    """One LightGBM model over every series: lags, rolling statistics, calendar, price, text.

    Static features per series (a frame indexed like ``unique_id``) are given by the caller:
    :func:`static_features` builds them from the items' price, category and text embedding.

    Args:
        lags: lagged weeks used as features.
        windows: windows of the rolling mean and standard deviation of the last week's lag.
        n_estimators, learning_rate, num_leaves, min_child_samples: LightGBM's.
        objective: LightGBM objective; ``"tweedie"`` suits zero-heavy counts (unscaled target only).
        target_scaling: ``"none"`` or ``"standard"`` (each series standardized by mlforecast's
            LocalStandardScaler, so that one model learns shapes rather than levels).
        seed: LightGBM seed.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ds = pd.date_range("2024-01-06", periods=30, freq="W-SAT")
        >>> demand = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 30), "ds": np.tile(ds, 2),
        ...                        "y": np.r_[rng.poisson(5, 30), rng.poisson(20, 30)].astype(float)})
        >>> statics = pd.DataFrame({"price": [1.0, 2.0]}, index=["a", "b"])
        >>> model = GlobalDemandModel(n_estimators=20).fit(demand, statics, freq="W-SAT")
        >>> out = model.predict(demand, statics, horizon=2)
        >>> means = out.groupby("unique_id")["LightGBM"].mean()
        >>> out.shape, bool(means["b"] > means["a"])
        ((4, 3), True)
    """

    _version_modules = ("lightgbm", "mlforecast")

    def __init__(
        self,
        lags: Sequence[int] = (1, 2, 3, 4, 8, 12),
        windows: Sequence[int] = (4, 8),
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        objective: str = "tweedie",
        target_scaling: str = "none",
        seed: int = 0,
    ) -> None:
        self.lags = list(lags)
        self.windows = list(windows)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.objective = objective
        self.target_scaling = target_scaling
        self.seed = seed

    def _pipeline(self, freq: str, model: Any) -> Any:
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import ExpandingMean, RollingMean, RollingStd
        from mlforecast.target_transforms import LocalStandardScaler

        transforms: list[Any] = [ExpandingMean()]
        for window in self.windows:
            transforms += [
                RollingMean(window_size=window, min_samples=1),
                RollingStd(window_size=window, min_samples=2),
            ]
        if self.target_scaling not in ("none", "standard"):
            raise InputError(f"target_scaling must be 'none' or 'standard', got {self.target_scaling!r}")
        scalers = [LocalStandardScaler()] if self.target_scaling == "standard" else None
        return MLForecast(
            models={GLOBAL_MODEL: model},
            freq=freq,
            lags=self.lags,
            lag_transforms={1: transforms},
            date_features=[week_of_year, "month"],
            target_transforms=scalers,
            num_threads=1,
        )

    @staticmethod
    def _frame(demand: pd.DataFrame, statics: pd.DataFrame) -> pd.DataFrame:
        missing = sorted(set(demand["unique_id"].unique()) - set(statics.index))
        if missing:
            raise InputError(f"no static features for series {missing[:5]}")
        joined = demand[["unique_id", "ds", "y"]].join(statics, on="unique_id")
        return joined.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)

    def fit(self, demand: pd.DataFrame, statics: pd.DataFrame, *, freq: str) -> Self:
        """Learn from the weekly ``demand`` (``unique_id, ds, y``) with per-series ``statics``."""
        import lightgbm as lgb

        if demand.empty or not (demand["y"] > 0).any():
            raise InputError("no demand to learn from: the history is empty or all zeros")
        regressor = lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            objective=self.objective,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        pipeline = self._pipeline(freq, regressor)
        static_columns = list(statics.columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "null values in lag8": short series, which LightGBM handles
            features, target = pipeline.preprocess(
                self._frame(demand, statics), static_features=static_columns, dropna=False, return_X_y=True
            )
        regressor.fit(features, target)
        self.booster_text_ = regressor.booster_.model_to_string()
        self.feature_names_ = list(features.columns)
        self.static_columns_ = static_columns
        self.freq_ = freq
        self._booster = regressor.booster_
        return self

    def predict(self, demand: pd.DataFrame, statics: pd.DataFrame, *, horizon: int) -> pd.DataFrame:
        """Forecast ``horizon`` weeks after the end of each series of ``demand``, clipped at 0.

        Returns:
            Frame ``unique_id, ds, LightGBM``.
        """
        self.check_fitted()
        if list(statics.columns) != self.static_columns_:
            raise InputError(f"static features {list(statics.columns)} differ from the trained {self.static_columns_}")
        pipeline = self._pipeline(self.freq_, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            features = pipeline.preprocess(
                self._frame(demand, statics), static_features=self.static_columns_, dropna=False
            )
        names = [c for c in features.columns if c not in ("unique_id", "ds", "y")]
        if names != self.feature_names_:
            raise InputError("the features built for prediction differ from the trained ones")
        pipeline.models_ = {GLOBAL_MODEL: _FittedBooster(self._get_booster())}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pipeline.predict(horizon)
        out[GLOBAL_MODEL] = out[GLOBAL_MODEL].clip(lower=0)
        return out.reset_index(drop=True)

    def _get_booster(self) -> Any:
        if getattr(self, "_booster", None) is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.booster_text_)
        return self._booster

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        state = {"feature_names": self.feature_names_, "static_columns": self.static_columns_, "freq": self.freq_}
        # LightGBM's own text format, in the hashed strings file: no pickle, checked on load
        return {"booster": np.array([self.booster_text_])}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.booster_text_ = str(arrays["booster"][0])
        self.feature_names_ = list(state["feature_names"])
        self.static_columns_ = list(state["static_columns"])
        self.freq_ = state["freq"]
        self._booster = None


def static_features(
    items: pd.DataFrame, embeddings: np.ndarray | None = None, *, n_text_dims: int = 8, seed: int = 0
) -> pd.DataFrame:
    """Per-series static features of the global model: log price, category code, text PCA.

    Args:
        items: one row per series with ``unique_id``, ``price`` and ``category`` (a string).
        embeddings: the series' text vectors in the same order, or None (no text features).
        n_text_dims: PCA components of the text vectors kept.

    Returns:
        Frame indexed by ``unique_id``.
    """
    from sklearn.decomposition import PCA

    out = pd.DataFrame(index=pd.Index(items["unique_id"].astype(str), name="unique_id"))
    out["log_price"] = np.log1p(items["price"].to_numpy(dtype=float))
    codes = {name: i for i, name in enumerate(sorted(items["category"].astype(str).unique()))}
    out["category"] = items["category"].astype(str).map(codes).to_numpy(dtype=float)
    dims = 0 if embeddings is None else min(n_text_dims, len(items) - 1, np.shape(embeddings)[1])
    if dims > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # identical descriptions: no variance to explain
            vectors = PCA(n_components=dims, random_state=seed).fit_transform(np.asarray(embeddings, dtype=float))
        for i in range(dims):
            out[f"text{i}"] = vectors[:, i]
    return out
