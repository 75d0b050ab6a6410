"""``shoplm bench clv``: BG/NBD on a CDNOW-format file, beside ``lifetimes`` and a naive extrapolation.

Protocol (Fader, Hardie & Lee 2005): calibration through ``calibration_end``; repeat
transactions (purchase days after the first) counted over a holdout of ``holdout_weeks``
weeks; time in weeks. Reported, in one run:

- ``params``: our BG/NBD fit on every customer of the file;
- ``reference``: ``lifetimes`` 0.11.3's ``BetaGeoFitter`` on the same summary (``null`` with a
  note when lifetimes is not installed: ``pip install -e '.[reference]'``), and the largest
  relative difference of the four parameters;
- ``holdout``: actual and predicted holdout repeat purchases, in aggregate and per customer
  (RMSE, correlation), beside ``naive`` (each customer's calibration rate x / T extrapolated);
- ``fader_sample``: the same fit on a seeded 1/10 random sample of customers (their sampling
  scheme) beside the paper's published parameters;
- ``gamma_gamma``: spend-per-transaction parameters and the mean 12-month CLV.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.customers.bgnbd import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from shoplm.customers.summary import daily_transactions, holdout_counts, read_cdnow, rfm_summary
from shoplm.errors import InputError

__all__ = ["PUBLISHED_FADER_2005", "run_clv_benchmark"]

#: Fader, Hardie & Lee (2005), BG/NBD on the 2,357-customer CDNOW sample
PUBLISHED_FADER_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
_INSTALL = "pip install -e '.[reference]'"


def _log(message: str) -> None:
    print(f"[clv] {message}", file=sys.stderr, flush=True)


def _reference_fit(summary: pd.DataFrame) -> dict[str, Any]:
    """lifetimes' BetaGeoFitter on the same summary; its own likelihood if ``fit`` breaks."""
    try:
        from lifetimes import BetaGeoFitter  # the reference only, never a dependency of shoplm
    except ImportError:
        return {"name": "lifetimes", "params": None, "note": f"lifetimes is not installed: {_INSTALL}"}
    import lifetimes

    columns = (summary["frequency"], summary["recency"], summary["T"])
    try:
        fitter = BetaGeoFitter().fit(*columns)
        params = {k: float(v) for k, v in fitter.params_.items()}
        method = "BetaGeoFitter.fit"
    except Exception as exc:  # lifetimes is unmaintained: fall back on its likelihood alone
        from scipy.optimize import minimize

        def negative_ll(log_params: np.ndarray) -> float:
            return float(BetaGeoFitter._negative_log_likelihood(log_params, *(c.to_numpy() for c in columns), 1.0, 0.0))

        result = minimize(negative_ll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 20_000})
        params = dict(zip(("r", "alpha", "a", "b"), (float(v) for v in np.exp(result.x)), strict=True))
        method = f"scipy Nelder-Mead on BetaGeoFitter._negative_log_likelihood (fit failed: {exc})"
    return {"name": "lifetimes", "version": lifetimes.__version__, "method": method, "params": params}


def _relative_gap(ours: dict[str, float], theirs: dict[str, float] | None) -> float | None:
    if not theirs:
        return None
    return max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in ours)


def _holdout_report(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    correlation = float(np.corrcoef(actual, predicted)[0, 1]) if actual.std() > 0 and predicted.std() > 0 else None
    return {
        "actual": float(actual.sum()),
        "predicted": float(predicted.sum()),
        "rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
        "mae": float(np.mean(np.abs(actual - predicted))),
        "correlation": correlation,
    }


def _fit_block(summary: pd.DataFrame, actual: np.ndarray, holdout_weeks: float) -> dict[str, Any]:
    """Our fit, the reference fit and the holdout figures on one set of customers."""
    x, t_x, T = summary["frequency"], summary["recency"], summary["T"]
    model = BetaGeoModel().fit(x, t_x, T)
    reference = _reference_fit(summary)
    predicted = model.expected_purchases(holdout_weeks, x, t_x, T)
    naive = np.where(T > 0, x / T.where(T > 0, 1.0), 0.0) * holdout_weeks
    return {
        "model": model,
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "reference": reference,
        "max_relative_difference": _relative_gap(model.params_, reference["params"]),
        "holdout": _holdout_report(actual, predicted),
        "naive": _holdout_report(actual, naive),
        "n_customers": len(summary),
    }


def _chart(path: Path, daily: pd.DataFrame, summary: pd.DataFrame, model: BetaGeoModel, end: pd.Timestamp, weeks: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, t_x, T = summary["frequency"], summary["recency"], summary["T"]
    steps = np.arange(0, weeks + 1)
    predicted = [float(model.expected_purchases(float(w), x, t_x, T).sum()) for w in steps]
    rate = np.where(T > 0, x / T.where(T > 0, 1.0), 0.0).sum()
    later = daily[(daily["date"] > end) & daily["customer_id"].isin(summary.index)]
    week_of = ((later["date"] - end).dt.days - 1) // 7 + 1
    actual = [int((week_of <= w).sum()) for w in steps]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    axis.plot(steps, actual, label="actual", color="black")
    axis.plot(steps, predicted, label="BG/NBD (shoplm)", linestyle="--")
    axis.plot(steps, rate * steps, label="naive rate x/T", linestyle=":")
    axis.set_xlabel(f"weeks after {end.date()}")
    axis.set_ylabel("cumulative repeat transactions")
    axis.set_title("Holdout repeat purchases, all customers of the file")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run_clv_benchmark(
    data: str | Path,
    out: str | Path | None = None,
    *,
    calibration_end: str = "1997-09-30",
    holdout_weeks: int = 39,
    sample_fraction: float = 0.1,
    seed: int = 0,
    chart: str | Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark described in the module docstring; write JSON (and a PNG) if asked.

    Args:
        data: a CDNOW-format file (see :func:`shoplm.customers.summary.read_cdnow`).
        out: JSON report path (the chart goes beside it as ``.png`` unless ``chart`` is given).
        calibration_end: last calibration day.
        holdout_weeks: holdout length in weeks.
        sample_fraction: share of customers in the Fader-style sample.
        seed: seed of that sample.
        chart: PNG path.

    Returns:
        The report (see the module docstring).
    """
    started = time.perf_counter()
    try:
        end = pd.Timestamp(calibration_end)
    except ValueError as exc:
        raise InputError(f"calibration end must be a date such as 1997-09-30, not {calibration_end!r}") from exc
    if holdout_weeks < 1 or not 0 < sample_fraction <= 1:
        raise InputError("need holdout_weeks ≥ 1 and 0 < sample_fraction ≤ 1")
    frame = read_cdnow(data)
    daily = daily_transactions(frame)
    summary = rfm_summary(frame, end, "W", daily=daily)
    if summary.empty:
        raise InputError(
            f"no purchase on or before the calibration end {end.date()} (the file starts "
            f"{frame['timestamp'].min().date()}): pass --calibration-end",
            path=data,
        )
    if summary["frequency"].sum() == 0:
        raise InputError("no repeat purchase in the calibration period: BG/NBD has nothing to fit", path=data)
    actual = holdout_counts(frame, end, holdout_weeks, "W", daily=daily).reindex(summary.index, fill_value=0)
    holdout_end = end + pd.Timedelta(weeks=holdout_weeks)
    covered = min(holdout_weeks, max(0.0, (frame["timestamp"].max().normalize() - end).days / 7))
    if covered < holdout_weeks:
        last = frame["timestamp"].max().date()
        _log(f"the file ends {last}: only {covered:.1f} of the {holdout_weeks} holdout weeks are in it")
    _log(f"{len(frame):,} lines, {len(summary):,} customers; fitting BG/NBD and the lifetimes reference")
    full = _fit_block(summary, actual.to_numpy(dtype=float), holdout_weeks)
    _log(f"full cohort: {full['params']}; reference {full['reference']['params']}")

    rng = np.random.default_rng(seed)
    size = max(2, round(sample_fraction * len(summary)))
    chosen = np.sort(rng.choice(len(summary), size=min(size, len(summary)), replace=False))
    sample = summary.iloc[chosen]
    sampled = _fit_block(sample, actual.iloc[chosen].to_numpy(dtype=float), holdout_weeks)
    _log(f"{sample_fraction:.0%} sample ({len(sample):,} customers, seed {seed}): {sampled['params']}")

    spend = GammaGammaModel().fit(summary["frequency"], summary["monetary_value"])
    clv = customer_lifetime_value(
        full["model"], spend, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    )
    report: dict[str, Any] = {
        "data": str(data),
        "protocol": {
            "calibration_end": str(end.date()),
            "holdout_weeks": holdout_weeks,
            "time_unit": "weeks",
            "transaction": "a customer's purchases on one day",
            "holdout_end": str(holdout_end.date()),
            "holdout_weeks_in_file": round(covered, 2),
        },
        "n_customers": len(summary),
        "params": full["params"],
        "log_likelihood": full["log_likelihood"],
        "reference": None if full["reference"]["params"] is None else full["reference"],
        "max_relative_difference": full["max_relative_difference"],
        "holdout": full["holdout"],
        "naive": full["naive"],
        "fader_sample": {
            "fraction": sample_fraction,
            "seed": seed,
            "n_customers": sampled["n_customers"],
            "params": sampled["params"],
            "published": PUBLISHED_FADER_2005,
            "reference_params": sampled["reference"]["params"],
            "holdout": sampled["holdout"],
            "naive": sampled["naive"],
        },
        "gamma_gamma": {
            "params": spend.params_,
            "n_customers": spend.n_customers_,
            "mean_clv_12_months": float(np.mean(clv)),
            "discount_rate_monthly": 0.01,
        },
        "seconds": round(time.perf_counter() - started, 2),
    }
    if full["reference"]["params"] is None:
        report["reference_note"] = full["reference"]["note"]
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2))
        chart = chart or out_path.with_suffix(".png")
    if chart is not None:
        _chart(Path(chart), daily, summary, full["model"], end, holdout_weeks)
        report["chart"] = str(chart)
    return report
