"""``shoplm bench forecast``: every model on the same series and rolling-origin folds of a retail file.

Protocol (weekly):

- Series: the top ``n_skus`` SKUs by net revenue over the file, every category total and (not
  reported) each category's rest, see :mod:`shoplm.forecast.pipeline`.
- Reported folds: 4 origins 4 weeks apart covering the last 16 weeks, each forecasting 4 weeks
  from all the weeks before it. Validation folds: ``validation_folds`` origins 4 weeks apart whose
  windows end where the first reported fold starts. Every choice (model or combination per
  class, conformal quantiles) is learned on the validation folds only.
- Metrics per model over (series, fold): MASE and RMSSE scaled by the series' in-sample one-step
  naive error at the fold's origin (utilsforecast), bias as the mean scaled error (forecast minus
  actual; > 0 over-forecasts), and the share of actual weeks inside the 80% / 95% intervals.
  A series whose history is constant at the origin (naive error 0) has no scale and is left out
  of that fold (counted).
- Intervals: split conformal for every model alike, from its own validation errors per demand
  class and step (see :mod:`shoplm.forecast.ensemble`); AutoARIMA, run on the reported folds
  only (its search costs about 80 s per fold here, more than all other models together), has
  statsforecast's model-based intervals and is no candidate of the ensemble.
- Cold-start slice: SKUs first sold in the last 12 weeks, at each reported origin where they have
  1 to 7 weeks of history, against the category-mean baseline, in units (MAE, RMSE, bias).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.forecast.ensemble import EnsembleSelector
from shoplm.forecast.models import GLOBAL_MODEL, GlobalDemandModel
from shoplm.forecast.panel import MIN_HISTORY_WEEKS, weekly_demand
from shoplm.forecast.pipeline import (
    COLD_START,
    ENSEMBLE,
    SeriesSet,
    build_series,
    cold_start_model,
    ensemble_input,
    forecasts_at_origin,
    reconcile,
)
from shoplm.lm.categories import ItemCategories, derive_categories

HORIZON = 4
CANDIDATE_STAT_MODELS = ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "IMAPA")
REPORTED_FOLDS = 4
COLD_WEEKS = 12
Encode = Callable[[list[str]], np.ndarray]
Log = Callable[[str], None]


def run_forecast_bench(
    path: str | Path,
    *,
    encode: Encode | None = None,
    n_skus: int = 500,
    validation_folds: int = 3,
    models: Sequence[str] = CANDIDATE_STAT_MODELS,
    reported_only: Sequence[str] = ("AutoARIMA",),
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Run the benchmark on a UCI Online Retail (or Online Retail II) CSV(.gz).

    Args:
        path: the file.
        encode: texts -> unit vectors (the e5 encoder); None: TF-IDF vectors instead.
        n_skus: SKUs by revenue.
        validation_folds: 4-week folds before the reported ones.
        models: statsforecast models run on every fold (the ensemble's candidates, with LightGBM).
        reported_only: statsforecast models run on the reported folds only, with their
            model-based intervals (AutoARIMA: too slow to run on the validation folds too).
        log: progress lines.

    Returns:
        The results (``models``, ``best``, ``cold_start``, ``protocol``, ...), JSON-serializable.
    """
    from shoplm.ingest.transactions import read_retail_transactions

    started = time.monotonic()
    retail = read_retail_transactions(path)
    panel = weekly_demand(retail.frame)
    weeks = panel.weeks
    needed = MIN_HISTORY_WEEKS + HORIZON * (REPORTED_FOLDS + validation_folds)
    if len(weeks) < needed:
        raise InputError(f"{len(weeks)} complete weeks; the protocol needs at least {needed}", path=path)
    log(f"{len(retail.frame):,} lines, {len(panel.items):,} SKUs, {len(weeks)} weeks ({weeks[0].date()}..)")
    vectors, text_source, found, categories = text_categories(panel, encode, log)
    top = panel.items.sort_values("revenue", ascending=False, kind="stable")["item_id"].head(n_skus).tolist()
    series = build_series(panel, skus=top, categories=categories, embeddings=vectors)
    first_reported = len(weeks) - HORIZON * REPORTED_FOLDS
    validation_origins = [weeks[first_reported - HORIZON * k] for k in range(validation_folds, 0, -1)]
    reported_origins = [weeks[first_reported + HORIZON * k] for k in range(REPORTED_FOLDS)]
    candidates = [*models, GLOBAL_MODEL]

    def run(origin: pd.Timestamp, label: str, extra: Sequence[str] = ()) -> pd.DataFrame:
        tick = time.monotonic()
        part = forecasts_at_origin(
            series, origin, HORIZON, list(models), global_model=GlobalDemandModel(), interval_models=extra
        )
        part = part.merge(series.demand, on=["unique_id", "ds"], how="inner")
        part["origin"] = origin
        log(f"{label} fold from {origin.date()}: {part['unique_id'].nunique()} series, {time.monotonic() - tick:.0f}s")
        return part

    validation = pd.concat([run(o, "validation") for o in validation_origins], ignore_index=True)
    reported = pd.concat([run(o, "reported", reported_only) for o in reported_origins], ignore_index=True)

    selector = EnsembleSelector(candidates=candidates).fit(ensemble_input(validation, candidates))
    combined = selector.predict(ensemble_input(reported, candidates))
    intervals: dict[str, pd.DataFrame] = {ENSEMBLE: combined, f"{ENSEMBLE}-unreconciled": combined.copy()}
    reported[f"{ENSEMBLE}-unreconciled"] = combined["mean"]
    reconciled = []
    for _origin, fold in reported.assign(**{ENSEMBLE: combined["mean"]}).groupby("origin", sort=True):
        reconciled.append(reconcile(fold, series.info, ENSEMBLE))
    reported[ENSEMBLE] = pd.concat(reconciled).reindex(reported.index)
    shift = reported[ENSEMBLE] - combined["mean"]
    intervals[ENSEMBLE] = combined.assign(
        **{c: combined[c] + shift for c in combined.columns if c.startswith(("lo-", "hi-"))}
    )
    for name in candidates:  # each model's own conformal intervals, learned the same way
        single = EnsembleSelector(candidates=[name]).fit(validation.assign(scale=validation["interval_scale"]))
        intervals[name] = single.predict(reported.assign(scale=reported["interval_scale"]))

    for name in reported_only:  # model-based intervals (statsforecast)
        intervals[name] = pd.DataFrame(
            {f"{side}-{level}": reported[f"{name}-{side}-{level}"] for level in (80, 95) for side in ("lo", "hi")}
        )
    evaluated = reported[reported["unique_id"].map(series.info["kind"]) != "rest"]
    names = list(dict.fromkeys([ENSEMBLE, f"{ENSEMBLE}-unreconciled", *candidates, *reported_only]))
    results = {name: score(evaluated, name, intervals[name], series) for name in names}
    for name in names:
        results[name]["intervals"] = "model-based" if name in reported_only else "conformal"
    best = min(results, key=lambda name: results[name]["MASE"])
    # What bounds the ensemble: the same choice made in hindsight on the reported folds themselves
    # (not a model: it peeks at the answers), against the choice made on validation.
    hindsight = EnsembleSelector(candidates=candidates).fit(ensemble_input(reported, candidates))
    reported["hindsight"] = hindsight.predict(ensemble_input(reported, candidates))["mean"]
    evaluated = reported[reported["unique_id"].map(series.info["kind"]) != "rest"]
    bound = score(evaluated, "hindsight", intervals[ENSEMBLE], series)
    cold = cold_start_slice(panel, categories, vectors, reported_origins)
    target = results[ENSEMBLE]["MASE"] / results["AutoETS"]["MASE"] if "AutoETS" in results else None
    log(f"done in {time.monotonic() - started:.0f}s; best {best}")
    return {
        "models": results,
        "best": best,
        "shoplm_vs_autoets_mase": None if target is None else round(target, 4),
        "cold_start": cold,
        "hindsight_choice": {"MASE": bound["MASE"], "MASE_by_fold": bound["MASE_by_fold"], "choice": hindsight.choice_},
        "ensemble": {"choice": selector.choice_, "validation_mase": selector.validation_mase_},
        "categories": {
            "k": found.k,
            "source": text_source,
            "silhouette": {str(k): v for k, v in found.silhouettes.items()},
            "names": found.names,
        },
        "data": {
            "file": Path(path).name,
            "lines": len(retail.frame),
            "dropped_lines": retail.dropped,
            "service_lines": panel.service_lines,
            "returned_units": panel.returned_units,
            "clipped_negative_weeks": panel.clipped_weeks,
            "weeks": len(weeks),
            "first_week": str(weeks[0].date()),
            "last_week": str(weeks[-1].date()),
            "notes": panel.notes,
        },
        "protocol": {
            "skus": len(top),
            "categories": found.k,
            "horizon": HORIZON,
            "validation_origins": [str(o.date()) for o in validation_origins],
            "reported_origins": [str(o.date()) for o in reported_origins],
            "seasonality": "52 weeks only for series with >= 104 weeks of history at the origin, else none",
        },
        "runtime_seconds": round(time.monotonic() - started, 1),
    }


def text_categories(
    panel: Any, encode: Encode | None, log: Log
) -> tuple[np.ndarray | None, str, ItemCategories, dict[str, str]]:
    """The items' text vectors (None without an encoder), their source, and derived categories."""
    descriptions = panel.items["description"].astype(str).tolist()
    vectors, text_source = None, "tfidf"
    if encode is not None:
        log(f"encoding {len(descriptions):,} descriptions (cached after the first run)")
        vectors, text_source = np.asarray(encode(descriptions), dtype=np.float32), "e5"
    found = derive_categories(descriptions, vectors)
    categories = dict(zip(panel.items["item_id"], found.category_of(), strict=True))
    log(f"{found.k} categories by silhouette ({text_source}): {', '.join(found.names[:6])}, ...")
    return vectors, text_source, found, categories


def score(frame: pd.DataFrame, name: str, intervals: pd.DataFrame, series: SeriesSet) -> dict[str, Any]:
    """MASE, RMSSE, bias and coverage of one model over the reported rows of ``frame``."""
    from utilsforecast.losses import mase, rmsse

    rows = frame[frame["scale"] > 0]
    per_series = []
    for origin, fold in rows.groupby("origin", sort=True):
        history = series.demand[(series.demand["ds"] < origin) & series.demand["unique_id"].isin(fold["unique_id"])]
        table = fold[["unique_id", "ds", "y", name]]
        both = mase(table, [name], seasonality=1, train_df=history).rename(columns={name: "MASE"})
        both["RMSSE"] = rmsse(table, [name], seasonality=1, train_df=history)[name].to_numpy()
        both["origin"] = origin
        per_series.append(both)
    scores = pd.concat(per_series, ignore_index=True)
    kinds = scores["unique_id"].map(series.info["kind"])
    actual = rows["y"].to_numpy()
    inside = {
        level: float(
            np.mean(
                (intervals.loc[rows.index, f"lo-{level}"].to_numpy() <= actual + 1e-9)
                & (actual <= intervals.loc[rows.index, f"hi-{level}"].to_numpy() + 1e-9)
            )
        )
        for level in (80, 95)
    }
    return {
        "MASE": round(float(scores["MASE"].mean()), 4),
        "RMSSE": round(float(scores["RMSSE"].mean()), 4),
        "bias": round(float(np.mean((rows[name].to_numpy() - actual) / rows["scale"].to_numpy())), 4),
        "coverage80": round(inside[80], 4),
        "coverage95": round(inside[95], 4),
        "MASE_by_fold": [round(float(v), 4) for v in scores.groupby("origin", sort=True)["MASE"].mean()],
        "MASE_sku": round(float(scores.loc[kinds == "sku", "MASE"].mean()), 4),
        "MASE_category": round(float(scores.loc[kinds == "category", "MASE"].mean()), 4),
        "series_folds": len(scores),
        "left_out_constant": int((frame["scale"] <= 0).sum() // HORIZON),
    }


def cold_start_slice(
    panel: Any, categories: dict[str, str], vectors: np.ndarray | None, origins: Sequence[pd.Timestamp]
) -> dict[str, Any]:
    """Cold start (similar items) against the category mean, on SKUs first sold in the last 12 weeks."""
    series = build_series(panel, categories=categories, embeddings=vectors)
    skus = series.demand[series.demand["unique_id"].map(series.info["kind"]) == "sku"]
    cutoff = panel.weeks[len(panel.weeks) - COLD_WEEKS]
    first = panel.items.set_index("item_id")["first_week"]
    newcomers = set(first.index[first >= cutoff])
    errors: dict[str, list[np.ndarray]] = {COLD_START: [], "category-mean": []}
    cases = 0
    for origin in origins:
        history = skus[skus["ds"] < origin]
        values = {uid: g.to_numpy() for uid, g in history.groupby("unique_id", sort=True)["y"]}
        new = [uid for uid in sorted(newcomers) if 1 <= len(values.get(uid, ())) < MIN_HISTORY_WEEKS]
        model = cold_start_model(series, values)
        if not new or model is None:
            continue
        window = skus[(skus["ds"] >= origin) & (skus["ds"] < origin + pd.Timedelta(weeks=HORIZON))]
        actual = window.pivot(index="unique_id", columns="ds", values="y").reindex(new).fillna(0.0).to_numpy()
        at = series.info.index.get_indexer(new)
        cats = series.info.loc[new, "category"].tolist()
        ours = model.predict(
            series.vectors[at],
            cats,
            own_mean=[float(np.mean(values[u])) for u in new],
            own_weeks=[len(values[u]) for u in new],
        )
        errors[COLD_START].append(ours[:, None] - actual)
        errors["category-mean"].append(model.category_mean(cats)[:, None] - actual)
        cases += len(new)
    out: dict[str, Any] = {"skus_first_sold_in_last_12_weeks": len(newcomers), "sku_folds": cases}
    for name, parts in errors.items():
        if parts:
            error = np.concatenate(parts)
            out[name] = {
                "MAE": round(float(np.mean(np.abs(error))), 3),
                "RMSE": round(float(np.sqrt(np.mean(error**2))), 3),
                "bias": round(float(np.mean(error)), 3),
            }
    if cases:
        out["MAE_ratio"] = round(out[COLD_START]["MAE"] / max(out["category-mean"]["MAE"], 1e-12), 4)
    return out


def write_chart(results: dict[str, Any], path: Path) -> Path:
    """A PNG of every model's MASE and interval coverage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["models"])
    mase_values = [results["models"][n]["MASE"] for n in names]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = ["tab:red" if n == ENSEMBLE else "tab:blue" for n in names]
    left.barh(names, mase_values, color=colors)
    left.invert_yaxis()
    left.set_xlabel("MASE (lower is better)")
    left.set_title(f"{results['data']['file']}: 4 folds x 4 weeks")
    for level, marker in ((80, "o"), (95, "s")):
        right.scatter(
            [results["models"][n][f"coverage{level}"] for n in names], names, marker=marker, label=f"{level}%"
        )
        right.axvline(level / 100, color="grey", linestyle=":")
    right.invert_yaxis()
    right.set_xlabel("interval coverage (dotted: nominal)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
