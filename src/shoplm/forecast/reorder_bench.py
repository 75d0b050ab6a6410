"""``shoplm bench reorder``: 12 weeks of ordering with shoplm's forecasts against a naive policy.

Both policies review every week and order up to a level (lost sales, see
:func:`~shoplm.forecast.reorder.simulate_order_up_to`) for the same cycle service level:

- **shoplm**: the order-up-to level of :func:`~shoplm.forecast.reorder.reorder_advice` on the
  shoplm ensemble's forecast (chosen per demand class on 3 validation folds before the simulated
  weeks, conformal 95% intervals; not reconciled, SKUs only), refit every week on the history so far;
- **naive**: ``(L + R)`` × the mean of the last 4 weeks + ``z`` × √(L + R) × the standard deviation
  of the last 8 weeks.

Simulated: the last 12 weeks of the file, the top ``n_skus`` SKUs by revenue; both start with
their own first order-up-to level on the shelf. Both policies are also simulated over a range of
service levels (``sweep``), so that their fill rates can be compared at equal average stock.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.forecast.bench import CANDIDATE_STAT_MODELS, HORIZON, Encode, Log, text_categories
from shoplm.forecast.ensemble import EnsembleSelector
from shoplm.forecast.models import GLOBAL_MODEL, GlobalDemandModel
from shoplm.forecast.panel import MIN_HISTORY_WEEKS, weekly_demand
from shoplm.forecast.pipeline import build_series, ensemble_input, forecasts_at_origin
from shoplm.forecast.reorder import reorder_advice, simulate_order_up_to

SIMULATED_WEEKS = 12
SWEEP_LEVELS = (0.5001, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
VALIDATION_FOLDS = 3


def run_reorder_bench(
    path: Any,
    *,
    encode: Encode | None = None,
    n_skus: int = 500,
    lead_time: int = 1,
    review: int = 1,
    service_level: float = 0.95,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Simulate both policies over the file's last 12 weeks; returns JSON-serializable results."""
    from scipy.stats import norm

    from shoplm.ingest.transactions import read_retail_transactions

    started = time.monotonic()
    if not 0.5 < service_level < 1 or lead_time < 0 or review < 1 or lead_time + review > HORIZON:
        raise InputError(
            f"need 0.5 < service level < 1, lead time >= 0, review >= 1 and lead time + review <= {HORIZON}"
        )
    panel = weekly_demand(read_retail_transactions(path).frame)
    weeks = panel.weeks
    needed = MIN_HISTORY_WEEKS + HORIZON * VALIDATION_FOLDS + SIMULATED_WEEKS
    if len(weeks) < needed:
        raise InputError(f"{len(weeks)} complete weeks; the simulation needs at least {needed}", path=path)
    vectors, _source, _found, categories = text_categories(panel, encode, log)
    top = panel.items.sort_values("revenue", ascending=False, kind="stable")["item_id"].head(n_skus).tolist()
    series = build_series(panel, skus=top, categories=categories, embeddings=vectors)
    candidates = [*CANDIDATE_STAT_MODELS, GLOBAL_MODEL]
    start = len(weeks) - SIMULATED_WEEKS

    def at(origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
        return forecasts_at_origin(
            series, origin, horizon, list(CANDIDATE_STAT_MODELS), global_model=GlobalDemandModel()
        )

    validation = [at(weeks[start - HORIZON * k], HORIZON) for k in range(VALIDATION_FOLDS, 0, -1)]
    frame = pd.concat(validation, ignore_index=True).merge(series.demand, on=["unique_id", "ds"], how="inner")
    selector = EnsembleSelector(candidates=candidates, levels=[95]).fit(ensemble_input(frame, candidates))
    log("ensemble chosen on validation; simulating")

    wide = series.demand.pivot(index="ds", columns="unique_id", values="y").reindex(index=weeks, columns=top)
    wide = wide.fillna(0.0)
    period = lead_time + review
    shape = (SIMULATED_WEEKS + 1, len(top))
    means = {"shoplm": np.zeros(shape), "naive": np.zeros(shape)}
    stds = {"shoplm": np.zeros(shape), "naive": np.zeros(shape)}
    for j in range(SIMULATED_WEEKS + 1):  # decision j uses the weeks before weeks[start + j]
        origin = weeks[start] + pd.Timedelta(weeks=j)
        part = at(origin, period)
        part = part[part["unique_id"].isin(top)].reset_index(drop=True)
        combined = selector.predict(ensemble_input(part, candidates))
        advice = reorder_advice(
            part[["unique_id", "ds"]].join(combined[["mean", "lo-95", "hi-95"]]),
            lead_time=lead_time,
            review=review,
            service_level=service_level,
        ).set_index("unique_id")
        means["shoplm"][j] = advice["demand_mean"].reindex(top).fillna(0.0).to_numpy()
        stds["shoplm"][j] = advice["demand_std"].reindex(top).fillna(0.0).to_numpy()
        history = wide.iloc[: start + j]
        means["naive"][j] = (period * history.tail(4).mean()).to_numpy()
        stds["naive"][j] = (np.sqrt(period) * history.tail(8).std(ddof=0)).to_numpy()
        log(f"week {j + 1}/{SIMULATED_WEEKS + 1}: {time.monotonic() - started:.0f}s")
    demand = wide.iloc[start:].to_numpy()

    def simulate(name: str, level: float) -> dict[str, Any]:
        targets = means[name] + float(norm.ppf(level)) * stds[name]  # order-up-to level
        return simulate_order_up_to(demand, targets[1:], lead_time=lead_time, initial=targets[0]).as_dict()

    results = {name: simulate(name, service_level) for name in means}
    # Both policies over a range of service levels: compare their fill rates at equal stock.
    sweep = {str(level): {name: simulate(name, level) for name in means} for level in SWEEP_LEVELS}
    return {
        "policies": results,
        "sweep": sweep,
        "skus": len(top),
        "lead_time_weeks": lead_time,
        "review_weeks": review,
        "service_level": service_level,
        "simulated_weeks": [str(w.date()) for w in weeks[start:]],
        "ensemble_choice": selector.choice_,
        "runtime_seconds": round(time.monotonic() - started, 1),
    }


def write_reorder_chart(results: dict[str, Any], path: Any) -> Any:
    """A PNG of fill rate against average stock for both policies over the service-level sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, color in (("shoplm", "tab:red"), ("naive", "tab:blue")):
        points = [(v[name]["average_on_hand"], v[name]["fill_rate"]) for v in results["sweep"].values()]
        axis.plot(*zip(*points, strict=True), marker="o", color=color, label=name)
    axis.set_xlabel("average units on hand (all SKUs)")
    axis.set_ylabel("fill rate")
    axis.set_title(
        f"{results['skus']} SKUs, {len(results['simulated_weeks'])} weeks, lead time {results['lead_time_weeks']}"
    )
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
