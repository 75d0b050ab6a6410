"""From a demand panel to forecasts: the series to forecast, every model at one origin, the
shoplm ensemble, reconciliation, and :func:`forecast`, the domain API the application floor calls.

Series: the chosen SKUs, every category total (the sum of the clipped weekly demand of all the
category's SKUs) and, per category, the *rest* (its total minus the chosen SKUs), so that each
category is exactly the sum of its chosen SKUs and its rest: the hierarchy that MinTrace
(hierarchicalforecast, ``wls_struct``: weights from the summing structure, no residual
covariance needed) reconciles. Reconciled means are clipped at 0 and the intervals shifted with
their mean.

Example:
    >>> import numpy as np, pandas as pd
    >>> from shoplm.forecast.panel import weekly_demand
    >>> rng = np.random.default_rng(0)
    >>> days = pd.date_range("2024-01-06", periods=7 * 40, freq="D")
    >>> frame = pd.DataFrame({"item_id": rng.choice(["10", "11", "12"], 3000), "description": "mug",
    ...                       "timestamp": rng.choice(days, 3000), "quantity": 1, "unit_price": 2.0})
    >>> out = forecast(weekly_demand(frame), horizon=2, models=("AutoETS", "TSB"), global_model=False)
    >>> sorted(out["unique_id"].unique())[:3], len(out), bool((out["lo-80"] <= out["mean"]).all())
    (['10', '11', '12'], 8, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.forecast.coldstart import ColdStartForecaster
from shoplm.forecast.ensemble import EnsembleSelector
from shoplm.forecast.models import GLOBAL_MODEL, GlobalDemandModel, static_features, statistical_forecasts
from shoplm.forecast.panel import MIN_HISTORY_WEEKS, DemandPanel, check_horizon, demand_class, naive_scale

#: Models the ensemble chooses from by default. AutoARIMA is measured in the bench, but at about
#: 0.15 s a series and origin (80 s for 560 series, several times the other models together) it
#: is left out of the validation runs, and so out of the ensemble.
CANDIDATES = ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "IMAPA", GLOBAL_MODEL)
COLD_START = "ColdStart"
ENSEMBLE = "shoplm"
CATEGORY_PREFIX = "category:"
REST_PREFIX = "rest:"


@dataclass
class SeriesSet:
    """The series to forecast and what is known about each.

    Attributes:
        demand: long ``unique_id, ds, y`` of SKUs, category totals and category rests.
        info: indexed by ``unique_id``: ``kind`` (sku / category / rest), ``category``, ``price``.
        vectors: text vector of each series (rows of ``info``; aggregates: their SKUs' mean).
        statics: the global model's static features.
        freq: the frequency of ``ds``.
    """

    demand: pd.DataFrame
    info: pd.DataFrame
    vectors: np.ndarray
    statics: pd.DataFrame
    freq: str


def build_series(
    panel: DemandPanel,
    *,
    skus: Sequence[str] | None = None,
    categories: Mapping[str, str] | None = None,
    embeddings: np.ndarray | None = None,
) -> SeriesSet:
    """The SKU series, category totals and rests of a panel, with features.

    Args:
        panel: from :func:`~shoplm.forecast.panel.weekly_demand`.
        skus: SKUs to forecast; None: every SKU of the panel.
        categories: item_id -> category; None: one category ``"all"``.
        embeddings: text vectors aligned with ``panel.items`` rows; None: TF-IDF vectors.
    """
    from shoplm.lm.categories import _tfidf_vectors

    items = panel.items.set_index("item_id")
    if embeddings is None:
        embeddings = _tfidf_vectors(items["description"].astype(str).tolist(), 0)
    vectors_by_item = pd.DataFrame(np.asarray(embeddings, dtype=np.float32), index=items.index)
    category = pd.Series({i: str((categories or {}).get(i, "all")) for i in items.index})
    chosen = list(items.index) if skus is None else [str(s) for s in skus]
    unknown = sorted(set(chosen) - set(items.index))
    if unknown:
        raise InputError(f"SKUs not in the panel: {unknown[:5]}")
    demand = panel.demand
    wide = demand.pivot(index="unique_id", columns="ds", values="y").reindex(columns=panel.weeks).fillna(0.0)
    totals = wide.groupby(category.reindex(wide.index)).sum()
    chosen_totals = wide.loc[wide.index.intersection(chosen)].groupby(category.reindex(chosen)).sum()
    rests = (totals - chosen_totals.reindex(totals.index).fillna(0.0)).clip(lower=0.0)
    parts = [demand[demand["unique_id"].isin(chosen)]]
    for prefix, table in ((CATEGORY_PREFIX, totals), (REST_PREFIX, rests)):
        long = table.stack().rename("y").rename_axis(["unique_id", "ds"]).reset_index()
        long["unique_id"] = prefix + long["unique_id"].astype(str)
        parts.append(long)
    series = pd.concat(parts, ignore_index=True).sort_values(["unique_id", "ds"], kind="stable")
    rows = []
    vectors = []
    for sku in chosen:
        rows.append((sku, "sku", category[sku], items.at[sku, "price"]))
        vectors.append(vectors_by_item.loc[sku].to_numpy())
    for name in totals.index:
        members = category.index[category == name]
        mean_vector = vectors_by_item.loc[members].to_numpy().mean(axis=0)
        mean_vector /= max(float(np.linalg.norm(mean_vector)), 1e-12)
        price = float(items.loc[members, "price"].median())
        for prefix, kind in ((CATEGORY_PREFIX, "category"), (REST_PREFIX, "rest")):
            rows.append((prefix + str(name), kind, str(name), price))
            vectors.append(mean_vector)
    info = pd.DataFrame(rows, columns=["unique_id", "kind", "category", "price"]).set_index("unique_id")
    matrix = np.vstack(vectors).astype(np.float32)
    statics = static_features(info.reset_index(), matrix)
    statics["aggregate"] = (info["kind"] != "sku").astype(float).to_numpy()
    return SeriesSet(demand=series.reset_index(drop=True), info=info, vectors=matrix, statics=statics, freq=panel.freq)


def forecasts_at_origin(
    series: SeriesSet,
    origin: pd.Timestamp,
    horizon: int,
    models: Sequence[str],
    *,
    global_model: GlobalDemandModel | None = None,
    interval_models: Sequence[str] = (),
    levels: Sequence[int] = (80, 95),
) -> pd.DataFrame:
    """Every model's forecast of every series from the weeks before ``origin``.

    Args:
        series: from :func:`build_series`.
        origin: first forecast week; history is ``ds < origin``.
        horizon: weeks ahead.
        models: statsforecast model names (see :data:`~shoplm.forecast.models.STAT_MODELS`).
        global_model: an unfitted :class:`GlobalDemandModel` to fit on this history, or None.
        interval_models: statsforecast models run separately with their model-based intervals
            at ``levels`` (columns ``<model>-lo-<level>`` and ``<model>-hi-<level>``).
        levels: the levels of those intervals.

    Returns:
        One row per series and step: ``unique_id, ds, step``, a column per model, ``ColdStart``
        (for SKUs with fewer than 8 weeks, else NaN), ``series_class``, ``scale`` (in-sample
        naive error, 0 if undefined), ``interval_scale`` (> 0), ``history_weeks`` and
        ``history_total``.
    """
    history = series.demand[series.demand["ds"] < origin]
    if history.empty:
        raise InputError(f"no history before {origin.date()}")
    grouped = history.groupby("unique_id", sort=True)["y"]
    values = {uid: g.to_numpy() for uid, g in grouped}
    out = statistical_forecasts(history, horizon, series.freq, list(models)) if models else None
    if interval_models:
        with_levels = statistical_forecasts(history, horizon, series.freq, list(interval_models), levels=levels)
        out = with_levels if out is None else out.merge(with_levels, on=["unique_id", "ds"], how="left")
    if global_model is not None and not (history["y"] > 0).any():  # nothing sold yet: LightGBM says 0
        zeros = out if out is not None else statistical_forecasts(history, horizon, series.freq, ["SeasonalNaive"])
        out = zeros.assign(**{GLOBAL_MODEL: 0.0})
    elif global_model is not None:
        statics = series.statics.loc[list(values)]
        fitted = global_model.fit(history, statics, freq=series.freq)
        learned = fitted.predict(history, statics, horizon=horizon)
        out = learned if out is None else out.merge(learned, on=["unique_id", "ds"], how="left")
    if out is None:
        raise InputError("no model to run")
    out["step"] = out.groupby("unique_id").cumcount() + 1
    meta = pd.DataFrame(index=pd.Index(list(values), name="unique_id"))
    meta["history_weeks"] = [len(v) for v in values.values()]
    meta["scale"] = [naive_scale(v) for v in values.values()]
    meta["interval_scale"] = [_interval_scale(v) for v in values.values()]
    meta["history_total"] = [float(np.sum(v)) for v in values.values()]
    kinds = series.info.loc[meta.index, "kind"]
    meta["series_class"] = [
        "aggregate" if kind != "sku" else ("new" if n < MIN_HISTORY_WEEKS else demand_class(values[uid]))
        for uid, kind, n in zip(meta.index, kinds, meta["history_weeks"], strict=True)
    ]
    meta[COLD_START] = np.nan
    new = meta.index[meta["series_class"] == "new"]
    if len(new):
        meta.loc[new, COLD_START] = cold_start_levels(series, values, new)
    return out.join(meta, on="unique_id")


def _interval_scale(values: np.ndarray) -> float:
    scale = naive_scale(values)
    if scale > 0:
        return scale
    mean = float(np.mean(values)) if len(values) else 0.0
    return mean if mean > 0 else 1.0


def cold_start_levels(series: SeriesSet, values: Mapping[str, np.ndarray], new: Sequence[str]) -> np.ndarray:
    """The cold-start forecast of each ``new`` SKU from the established SKUs' recent demand."""
    model = cold_start_model(series, values)
    if model is None:  # no established SKU at all: the new SKUs' own means
        return np.array([float(np.mean(values[uid])) for uid in new])
    at = series.info.index.get_indexer(list(new))
    return model.predict(
        series.vectors[at],
        series.info.loc[list(new), "category"].tolist(),
        own_mean=[float(np.mean(values[uid])) for uid in new],
        own_weeks=[len(values[uid]) for uid in new],
    )


def cold_start_model(series: SeriesSet, values: Mapping[str, np.ndarray]) -> ColdStartForecaster | None:
    """A :class:`ColdStartForecaster` over the SKUs with at least 8 weeks in ``values``, or None."""
    established = [
        uid for uid, v in values.items() if series.info.at[uid, "kind"] == "sku" and len(v) >= MIN_HISTORY_WEEKS
    ]
    if not established:
        return None
    at = series.info.index.get_indexer(established)
    recent = [float(np.mean(values[uid][-MIN_HISTORY_WEEKS:])) for uid in established]
    categories = series.info.loc[established, "category"].tolist()
    return ColdStartForecaster().fit(established, series.vectors[at], categories, recent)


def ensemble_input(frame: pd.DataFrame, candidates: Sequence[str]) -> pd.DataFrame:
    """The selector's view: new SKUs get the cold-start forecast in every candidate column, and a
    series that never sold (all zeros, or only returns) a forecast of 0."""
    view = frame.copy()
    new = view["series_class"] == "new"
    never = view["history_total"] <= 0
    for name in candidates:
        view.loc[new, name] = view.loc[new, COLD_START]
        view.loc[never, name] = 0.0
    view["scale"] = view["interval_scale"]
    return view


def reconcile(frame: pd.DataFrame, info: pd.DataFrame, column: str) -> pd.Series:
    """MinTrace (wls_struct) reconciliation of ``column`` over categories = SKUs + rest; clipped at 0.

    Series that never sold (``history_total`` 0, forecast 0) stay out of the hierarchy and at 0.
    """
    from hierarchicalforecast.core import HierarchicalReconciliation
    from hierarchicalforecast.methods import MinTrace

    never = frame["history_total"] <= 0 if "history_total" in frame.columns else pd.Series(False, index=frame.index)
    kept, frame = frame[never], frame[~never]
    kinds = info["kind"].reindex(frame["unique_id"].unique())
    bottom = kinds.index[kinds != "category"].to_numpy()
    tops = kinds.index[kinds == "category"].to_numpy()
    if len(bottom) == 0 or len(tops) == 0:  # nothing to reconcile
        return pd.concat([frame[column].clip(lower=0), kept[column]]).astype(float).sort_index()
    categories = info.loc[bottom, "category"].to_numpy()
    summing = np.vstack(
        [(categories == info.at[top, "category"]).astype(float) for top in tops] + [np.eye(len(bottom))]
    )
    s_df = pd.DataFrame(summing, columns=bottom)
    s_df.insert(0, "unique_id", np.r_[tops, bottom])
    tags = {"category": tops, "category/series": bottom}
    base = frame[["unique_id", "ds", column]]
    reconciled = HierarchicalReconciliation([MinTrace(method="wls_struct")]).reconcile(
        Y_hat_df=base, S_df=s_df, tags=tags
    )
    result_column = next(c for c in reconciled.columns if c.startswith(f"{column}/"))
    merged = frame[["unique_id", "ds"]].merge(reconciled[["unique_id", "ds", result_column]], how="left")
    result = merged[result_column].clip(lower=0).fillna(0.0).set_axis(frame.index)
    return pd.concat([result, kept[column].astype(float)]).sort_index()


def forecast(
    panel: DemandPanel,
    horizon: int,
    levels: Sequence[int] = (80, 95),
    *,
    skus: Sequence[str] | None = None,
    categories: Mapping[str, str] | None = None,
    embeddings: np.ndarray | None = None,
    models: Sequence[str] = CANDIDATES,
    global_model: bool = True,
    validation_windows: int = 3,
) -> pd.DataFrame:
    """Weekly forecasts with intervals for every SKU and category: the shoplm ensemble.

    The ensemble is chosen per demand class on the last ``validation_windows`` rolling-origin
    windows of the panel (each as long as the horizon, at most 13 weeks; longer horizons widen the
    last step's intervals), then every model is refit on the whole history and combined;
    categories and SKUs are reconciled. SKUs with fewer than 8 weeks are forecast from similar
    items; a SKU that never sold (all zeros, or only returns) gets a mean forecast of 0.

    Args:
        panel: from :func:`~shoplm.forecast.panel.weekly_demand`.
        horizon: weeks ahead, 1 to 52.
        levels: interval levels in percent.
        skus: SKUs to forecast (None: all).
        categories: item_id -> category (None: one category ``"all"``).
        embeddings: text vectors aligned with ``panel.items`` (None: TF-IDF vectors).
        models: statsforecast candidates (LightGBM is added when ``global_model``).
        global_model: include the global LightGBM model.
        validation_windows: windows the choice and the intervals are learned on.

    Returns:
        Frame ``unique_id, ds, mean, lo-<level>, hi-<level>, kind, series_class, members``;
        categories are named ``category:<name>``.

    Raises:
        InputError: a bad horizon or level, or too short a panel to validate on.
    """
    horizon = check_horizon(horizon)
    levels = [int(level) for level in levels]
    if not levels or any(not 0 < level < 100 for level in levels):
        raise InputError(f"interval levels must be between 0 and 100, got {levels}")
    series = build_series(panel, skus=skus, categories=categories, embeddings=embeddings)
    weeks = panel.weeks
    window = min(horizon, 13)
    n_windows = min(validation_windows, (len(weeks) - MIN_HISTORY_WEEKS) // window)
    if n_windows < 1:
        raise InputError(
            f"the panel has {len(weeks)} weeks: at least {MIN_HISTORY_WEEKS + window} are needed "
            f"to validate a {horizon}-week forecast"
        )
    stat_models = [m for m in models if m != GLOBAL_MODEL]
    candidates = [*stat_models, *([GLOBAL_MODEL] if global_model else [])]
    validation = []
    for k in range(n_windows, 0, -1):
        origin = weeks[len(weeks) - k * window]
        part = forecasts_at_origin(
            series, origin, window, stat_models, global_model=GlobalDemandModel() if global_model else None
        )
        validation.append(part.merge(series.demand, on=["unique_id", "ds"], how="inner"))
    selector = EnsembleSelector(candidates=candidates, levels=levels).fit(
        ensemble_input(pd.concat(validation, ignore_index=True), candidates)
    )
    origin = weeks[-1] + pd.Timedelta(weeks=1)
    final = forecasts_at_origin(
        series, origin, horizon, stat_models, global_model=GlobalDemandModel() if global_model else None
    )
    combined = selector.predict(ensemble_input(final, candidates))
    result = final[["unique_id", "ds", "series_class", "history_total"]].join(combined)
    reconciled = reconcile(result.rename(columns={"mean": ENSEMBLE}), series.info, ENSEMBLE)
    shift = reconciled - result["mean"]
    result["mean"] = reconciled
    for level in levels:
        result[f"lo-{level}"] = (result[f"lo-{level}"] + shift).clip(lower=0)
        result[f"hi-{level}"] = np.maximum(result[f"hi-{level}"] + shift, result["mean"])
        result[f"lo-{level}"] = np.minimum(result[f"lo-{level}"], result["mean"])
    result["kind"] = series.info["kind"].reindex(result["unique_id"]).to_numpy()
    result = result[result["kind"] != "rest"]
    columns = ["unique_id", "ds", "mean"]
    for level in levels:
        columns += [f"lo-{level}", f"hi-{level}"]
    return result[[*columns, "kind", "series_class", "members"]].reset_index(drop=True)
