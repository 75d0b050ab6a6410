"""``shoplm bench dp``: what differential privacy costs the daily reports, as relative error vs ε.

For each dataset and report, the exact (unbounded, noiseless) cells of a 30-day test window are
compared with ``draws`` releases at each ε in :data:`EPSILONS`:

- ``cell_rel_error``: the median over cells with a true value above zero of |noisy - true| / true;
- ``total_rel_error``: the same over each category's total for the window (the sum of its days);
- ``top_cell_rel_error``, ``top_total_rel_error``: the same over the 20 largest categories
  (ranked by rows in the validation window);
- ``mean_abs_error``: for reports with a mean, the median |noisy mean - true mean| of cells
  where both exist.

Each figure is the median over draws (with the 10th and 90th percentiles). The truth is the
unbounded data, so the error includes what the contribution bounds cut off (``bounding_loss``,
the share of the window's total removed by bounding and clamping).

Two variants per report: the shipped bounds (``default``) and bounds chosen on a *validation*
window (the 30 days before the test window) from a small grid of clamps, cells per customer and
rows per cell, by the error of the 20 largest categories' cells at ε = 1, never on the test window.

opendp draws its noise from the operating system's secure generator, which cannot be seeded, so
a rerun gives slightly different figures; the data, the windows and the bounds are deterministic.

Example:
    >>> EPSILONS
    (0.1, 0.5, 1.0, 5.0)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.privacy.reports import REPORTS, ReportSpec, bound_contributions, exact_cells, release_report

__all__ = ["EPSILONS", "BenchCase", "demo_cases", "retail_cases", "run_dp_benchmark", "utility"]

EPSILONS = (0.1, 0.5, 1.0, 5.0)
WINDOW_DAYS = 30
#: Bounds tried on the validation window: the clamp's upper end (as a multiple of the default) and cells per customer.
UPPER_FACTORS = (1.0, 4.0, 16.0, 64.0)
CELLS_PER_USER = (1, 2, 4, 8)
#: ... and rows per customer and cell (as a multiple of the default).
ROWS_FACTORS = (1, 4)
#: The largest categories (by rows in the validation window) get their own figures: what an owner looks at.
TOP_CATEGORIES = 20


@dataclass
class BenchCase:
    """One report on one dataset: rows of the test and validation windows, and the public key set."""

    dataset: str
    spec: ReportSpec
    rows: pd.DataFrame
    validation_rows: pd.DataFrame
    categories: list[str]
    days: list[str]
    validation_days: list[str]


def _days(last: date, count: int = WINDOW_DAYS) -> list[str]:
    return [(last - timedelta(days=count - 1 - i)).isoformat() for i in range(count)]


def _windows(test_end: date) -> tuple[list[str], list[str]]:
    test = _days(test_end)
    return test, _days(date.fromisoformat(test[0]) - timedelta(days=1))


def _top_category(path: pd.Series) -> pd.Series:
    top = path.fillna("").astype(str).str.split(">", n=1).str[0].str.strip()
    return top.where(top != "", "(uncategorised)")


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def _day_of(timestamps: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(timestamps):
        timestamps = pd.to_datetime(timestamps, unit="ms", utc=True)
    else:
        timestamps = pd.to_datetime(timestamps, utc=True)
    return timestamps.dt.strftime("%Y-%m-%d")


def _cases(dataset: str, sources: dict[str, pd.DataFrame], categories: list[str], test_end: date) -> list[BenchCase]:
    days, validation_days = _windows(test_end)
    cases = []
    for name, rows in sources.items():
        rows = rows.sort_values("ts", kind="stable")[["user_id", "category", "day", "value"]]
        cases.append(
            BenchCase(
                dataset,
                REPORTS[name],
                rows[rows["day"].isin(days)].reset_index(drop=True),
                rows[rows["day"].isin(validation_days)].reset_index(drop=True),
                categories,
                days,
                validation_days,
            )
        )
    return cases


def demo_cases(files: dict[str, Path], test_end: date) -> list[BenchCase]:
    """The four reports on a demo store's files (items, events, orders, reviews)."""
    items = _read(files["items"])
    category = dict(zip(items["item_id"].astype(str), _top_category(items["category"]), strict=True))
    categories = sorted(set(category.values()))
    orders = _read(files["orders"])
    sold = orders[orders["status"].isin(["pending", "paid", "shipped", "delivered", "return_requested"])]
    sold = sold[sold["quantity"] > 0]
    sales = pd.DataFrame(
        {
            "user_id": sold["user_id"].fillna(sold["order_id"]).astype(str),
            "category": sold["item_id"].astype(str).map(category),
            "day": _day_of(sold["created_at"]),
            "ts": pd.to_datetime(sold["created_at"], utc=True),
        }
    )
    events = _read(files["events"])
    views = events[events["event_type"] == "view"]
    reviews = _read(files["reviews"]).dropna(subset=["rating"])
    sources = {
        "daily-sales": sales.assign(value=sold["quantity"].astype(float).to_numpy()),
        "daily-revenue": sales.assign(value=(sold["quantity"] * sold["unit_price"]).astype(float).to_numpy()),
        "daily-views": pd.DataFrame(
            {
                "user_id": views["user_id"].astype(str),
                "category": views["item_id"].astype(str).map(category),
                "day": _day_of(views["timestamp"]),
                "ts": views["timestamp"],
                "value": 1.0,
            }
        ),
        "daily-ratings": pd.DataFrame(
            {
                "user_id": reviews["user_id"].fillna(reviews["review_id"]).astype(str),
                "category": reviews["item_id"].astype(str).map(category),
                "day": _day_of(reviews["timestamp"]),
                "ts": pd.to_datetime(reviews["timestamp"], utc=True),
                "value": reviews["rating"].astype(float),
            }
        ),
    }
    return _cases("demo", sources, categories, test_end)


def retail_cases(path: Path, test_end: date = date(2011, 11, 30)) -> list[BenchCase]:
    """Units and revenue on Online Retail; a product's category is the first word of its description.

    The file has no categories; the first word (SET, JUMBO, LUNCH, CHRISTMAS, ...) is the closest
    cheap stand-in, and the key set is every first word of the file's catalog (842 of them),
    public like a catalog is. A guest line (no customer id) counts its invoice as the customer.
    """
    from shoplm.ingest.transactions import read_retail_transactions

    frame = read_retail_transactions(path).frame
    word = frame["description"].fillna("").astype(str).str.strip().str.split().str[0].fillna("")
    frame = frame.assign(category=word.where(word != "", "(uncategorised)"))
    categories = sorted(set(frame["category"]))
    sales = frame[~frame["is_return"] & (frame["quantity"] > 0)]
    base = pd.DataFrame(
        {
            "user_id": sales["customer_id"].where(sales["customer_id"] != "", "invoice:" + sales["invoice_id"]),
            "category": sales["category"],
            "day": sales["timestamp"].dt.strftime("%Y-%m-%d"),
            "ts": sales["timestamp"],
        }
    )
    sources = {
        "daily-sales": base.assign(value=sales["quantity"].astype(float)),
        "daily-revenue": base.assign(value=sales["amount"].astype(float)),
    }
    return _cases("online-retail", sources, categories, test_end)


def _measure(spec: ReportSpec) -> str:
    return "sum" if "sum" in spec.statistics else "count"


def _truth(rows: pd.DataFrame, categories: list[str], days: list[str]) -> pd.DataFrame:
    """Exact unbounded cells (count, sum, mean) on the grid."""
    return exact_cells(rows, categories, days).assign(
        mean=lambda f: np.where(f["count"] > 0, f["sum"] / f["count"].where(f["count"] > 0, 1), np.nan)
    )


def _median_relative(noisy: np.ndarray, true: np.ndarray, mask: np.ndarray) -> float:
    keep = mask & (true > 0)
    return float(np.median(np.abs(noisy[keep] - true[keep]) / true[keep])) if keep.any() else float("nan")


def _errors(release: dict[str, Any], truth: pd.DataFrame, spec: ReportSpec, top: set[str]) -> dict[str, float]:
    measure = _measure(spec)
    cells = pd.DataFrame(release["cells"])
    noisy = cells[measure].to_numpy(dtype=float)
    true = truth[measure].to_numpy(dtype=float)
    everywhere = np.ones(len(true), dtype=bool)
    in_top = cells["category"].isin(top).to_numpy()
    noisy_total = cells.assign(v=noisy).groupby("category")["v"].sum()
    true_total = truth.groupby("category")[measure].sum().reindex(noisy_total.index)
    top_totals = noisy_total.index.isin(list(top))
    result = {
        "cell_rel_error": _median_relative(noisy, true, everywhere),
        "total_rel_error": _median_relative(
            noisy_total.to_numpy(), true_total.to_numpy(), np.ones(len(top_totals), bool)
        ),
        "top_cell_rel_error": _median_relative(noisy, true, in_top),
        "top_total_rel_error": _median_relative(noisy_total.to_numpy(), true_total.to_numpy(), top_totals),
    }
    if "mean" in spec.statistics:
        noisy_mean = cells["mean"].to_numpy(dtype=float)
        both = ~np.isnan(noisy_mean) & ~np.isnan(truth["mean"].to_numpy(dtype=float))
        diffs = np.abs(noisy_mean[both] - truth["mean"].to_numpy(dtype=float)[both])
        result["mean_abs_error"] = float(np.median(diffs)) if both.any() else float("nan")
        result["mean_released_share"] = float(both.sum() / max(int((truth["count"] > 0).sum()), 1))
    return result


def top_categories(rows: pd.DataFrame, count: int = TOP_CATEGORIES) -> set[str]:
    """The ``count`` categories with the most rows (ranked on the validation window, never on the test one)."""
    return set(rows["category"].dropna().value_counts().index[:count])


def utility(
    spec: ReportSpec,
    rows: pd.DataFrame,
    categories: list[str],
    days: list[str],
    epsilon: float,
    draws: int,
    top: set[str] | None = None,
) -> dict[str, Any]:
    """Error figures of ``draws`` releases at ``epsilon`` (median and 10th/90th percentiles over draws)."""
    truth = _truth(rows, categories, days)
    bounded = bound_contributions(rows, spec, categories, days)
    exact = exact_cells(bounded, categories, days)
    measure = _measure(spec)
    true_total = float(truth[measure].sum())
    top = top if top is not None else top_categories(rows)
    samples = [
        _errors(
            release_report(spec, rows, categories=categories, days=days, epsilon=epsilon, exact=exact), truth, spec, top
        )
        for _ in range(draws)
    ]
    out: dict[str, Any] = {"epsilon": epsilon, "draws": draws}
    for key in samples[0]:
        values = np.array([s[key] for s in samples], dtype=float)
        out[key] = float(np.nanmedian(values))
        out[f"{key}_p10"] = float(np.nanpercentile(values, 10))
        out[f"{key}_p90"] = float(np.nanpercentile(values, 90))
    out["bounding_loss"] = 1 - float(exact[measure].sum()) / true_total if true_total else 0.0
    return out


def choose_bounds(case: BenchCase, draws: int) -> tuple[ReportSpec, list[dict[str, Any]]]:
    """The grid's bounds with the lowest error on the 20 largest categories' cells at ε = 1, on the validation window.

    The largest categories are what an owner reads; over every cell, the many nearly empty ones
    would favour the least noise whatever the bias.
    """
    tried = []
    best: tuple[float, ReportSpec] | None = None
    factors = UPPER_FACTORS if case.spec.upper > case.spec.lower and case.spec.value != "rating" else (1.0,)
    top = top_categories(case.validation_rows)
    for factor in factors:
        for cells in CELLS_PER_USER:
            for rows in ROWS_FACTORS:
                spec = replace(
                    case.spec,
                    upper=case.spec.upper * factor,
                    max_cells_per_user=cells,
                    max_rows_per_cell=case.spec.max_rows_per_cell * rows,
                )
                figures = utility(spec, case.validation_rows, case.categories, case.validation_days, 1.0, draws, top)
                error = figures["top_cell_rel_error"]
                tried.append(
                    {
                        "upper": spec.upper,
                        "max_cells_per_user": cells,
                        "max_rows_per_cell": spec.max_rows_per_cell,
                        "top_cell_rel_error": error,
                    }
                )
                if best is None or error < best[0]:
                    best = (error, spec)
    assert best is not None
    return best[1], tried


def _chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["dataset"], r["report"]) for r in results})
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (dataset, report) in zip(axes[0], panels, strict=True):
        for variant, style in (("default", "-o"), ("validated", "--s")):
            for key, colour in (("cell_rel_error", "tab:blue"), ("total_rel_error", "tab:orange")):
                rows = [r for r in results if (r["dataset"], r["report"], r["variant"]) == (dataset, report, variant)]
                if rows:
                    label = f"{'cells' if key.startswith('cell') else 'category totals'} ({variant})"
                    ax.plot([r["epsilon"] for r in rows], [r[key] for r in rows], style, color=colour, label=label)
        ax.set(xscale="log", yscale="log", title=f"{dataset}\n{report}", xlabel="ε")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("median relative error")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_dp_benchmark(
    cases: list[BenchCase],
    out: Path | None,
    *,
    draws: int = 20,
    validation_draws: int = 3,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Relative error vs ε for every case, with default and validation-chosen bounds; JSON and PNG at ``out``."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    chosen: dict[str, Any] = {}
    for case in cases:
        tuned, tried = choose_bounds(case, validation_draws)
        chosen[f"{case.dataset}/{case.spec.name}"] = {"chosen": asdict(tuned), "grid": tried}
        for variant, spec in (("default", case.spec), ("validated", tuned)):
            for epsilon in EPSILONS:
                figures = utility(
                    spec, case.rows, case.categories, case.days, epsilon, draws, top_categories(case.validation_rows)
                )
                results.append(
                    {
                        "dataset": case.dataset,
                        "report": case.spec.name,
                        "variant": variant,
                        "upper": spec.upper,
                        "max_cells_per_user": spec.max_cells_per_user,
                        "max_rows_per_cell": spec.max_rows_per_cell,
                        "cells": len(case.categories) * len(case.days),
                        "nonzero_cells": int((exact_cells(case.rows, case.categories, case.days)["count"] > 0).sum()),
                        **figures,
                    }
                )
                say(
                    f"{case.dataset} {case.spec.name} {variant} ε={epsilon:g}: cells {figures['cell_rel_error']:.3f}, "
                    f"totals {figures['total_rel_error']:.3f}, top-20 cells {figures['top_cell_rel_error']:.3f} "
                    f"({time.perf_counter() - started:.0f} s)"
                )
    report = {
        "protocol": {
            "epsilons": list(EPSILONS),
            "draws": draws,
            "window_days": WINDOW_DAYS,
            "windows": {
                c.dataset: {
                    "test": [c.days[0], c.days[-1]],
                    "validation": [c.validation_days[0], c.validation_days[-1]],
                }
                for c in cases
            },
            "truth": "exact unbounded cells; errors include what bounding cuts off",
            "noise": "opendp make_laplace (unseedable secure sampler)",
        },
        "bounds_chosen_on_validation": chosen,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        _chart(results, out.with_suffix(".png"))
    return report
