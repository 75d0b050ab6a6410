"""Differentially private reports: counts, sums and means per category and day, with their bounds.

A report is released over a *public* key set: the catalog's top-level categories times the
calendar days of the requested window. Every cell of that grid is released, empty ones too, so
which categories sold on which days does not leak through the set of cells.

Differential privacy is per person (add or remove one customer's whole data), which needs each
person's influence bounded before noise is added:

- each person keeps at most ``max_cells_per_user`` (category, day) cells of the window, chosen
  by a keyed hash of the cell (not by what is in it), and at most ``max_rows_per_cell`` rows in
  each (the first ones in time);
- each row's value is clamped to ``[lower, upper]``.

One person then moves the count vector by at most ``cells x rows`` and the sum vector by at most
``cells x rows x max(|lower|, |upper|)`` (L1), which calibrates opendp's Laplace noise. A mean is
post-processing of a noisy sum and a noisy count, ε split evenly between them (basic composition).
Noisy values are unbiased, so they may be negative: clamp them for display if you wish.

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"user_id": ["a", "a", "b"], "category": ["Toys"] * 3,
    ...                      "day": ["2026-06-01"] * 3, "value": [2.0, 50.0, 1.0]})
    >>> release = release_report(REPORTS["daily-sales"], rows, categories=["Toys", "Books"],
    ...                          days=["2026-06-01", "2026-06-02"], epsilon=1.0)
    >>> len(release["cells"]), release["epsilon"], release["delta"]
    (4, 1.0, 0.0)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from shoplm.errors import InputError, NotFoundError
from shoplm.privacy.mechanisms import MECHANISM, check_epsilon, laplace_vector

__all__ = ["REPORTS", "ReportSpec", "bound_contributions", "exact_cells", "get_report", "release_report"]

Statistic = Literal["count", "sum", "mean"]
ROW_COLUMNS = ("user_id", "category", "day", "value")


@dataclass(frozen=True)
class ReportSpec:
    """What a report measures and how each person's contribution is bounded.

    Attributes:
        name: the stable name (``daily-sales``).
        source: ``sales`` (order lines), ``views`` (view events) or ``ratings`` (reviews).
        value: what one row contributes (units, revenue, views, rating).
        statistics: which of count, sum and mean are released per cell.
        lower, upper: each row's value is clamped to this range.
        max_rows_per_cell: rows one person contributes to one (category, day) cell.
        max_cells_per_user: cells one person contributes to in the window.
        description: one line for listings.
    """

    name: str
    source: Literal["sales", "views", "ratings"]
    value: str
    statistics: tuple[Statistic, ...]
    lower: float
    upper: float
    max_rows_per_cell: int
    max_cells_per_user: int
    description: str

    @property
    def noisy_measures(self) -> tuple[str, ...]:
        """The vectors that get noise: a mean needs both a noisy sum and a noisy count."""
        wanted = set(self.statistics)
        measures = []
        if wanted & {"count", "mean"}:
            measures.append("count")
        if wanted & {"sum", "mean"}:
            measures.append("sum")
        return tuple(measures)

    def sensitivity(self, measure: str) -> float:
        """The L1 distance one person can move the ``count`` or ``sum`` vector by."""
        rows = self.max_rows_per_cell * self.max_cells_per_user
        return float(rows) if measure == "count" else rows * max(abs(self.lower), abs(self.upper))


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec(
            "daily-sales", "sales", "units", ("sum",), 0, 5, 2, 2, "units sold per category and day (paid orders)"
        ),
        ReportSpec(
            "daily-revenue",
            "sales",
            "revenue",
            ("sum", "mean"),
            0,
            200,
            2,
            2,
            "revenue per category and day, and mean revenue per order line",
        ),
        ReportSpec("daily-views", "views", "views", ("count",), 1, 1, 5, 4, "product views per category and day"),
        ReportSpec(
            "daily-ratings",
            "ratings",
            "rating",
            ("count", "mean"),
            1,
            5,
            1,
            4,
            "ratings per category and day, and their mean",
        ),
    )
}
DEFAULT_REPORT = "daily-sales"


def get_report(name: str) -> ReportSpec:
    """The report called ``name``; :class:`NotFoundError` naming the known ones otherwise.

    Example:
        >>> get_report("daily-views").source
        'views'
    """
    try:
        return REPORTS[name]
    except KeyError:
        known = ", ".join(REPORTS)
        raise NotFoundError(f"no report {name!r}: the reports are {known}", code="unknown_report") from None


def _cell_rank_key(frame: pd.DataFrame) -> np.ndarray:
    """A hash of (person, category, day): which of a person's cells are kept depends on nothing else."""
    return pd.util.hash_pandas_object(frame[["user_id", "category", "day"]], index=False, hash_key="shoplm-dp-cells!")


def bound_contributions(
    rows: pd.DataFrame, spec: ReportSpec, categories: Sequence[str], days: Sequence[str]
) -> pd.DataFrame:
    """Keep each person's bounded share of the rows in the key set, values clamped.

    Args:
        rows: ``user_id, category, day, value`` in time order (the first rows of a cell are kept).
        spec: the report's bounds.
        categories, days: the public key set; rows outside it are dropped.

    Returns:
        The kept rows with clamped values.
    """
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise InputError(f"report rows lack column(s) {missing}")
    kept = rows.loc[rows["category"].isin(set(categories)) & rows["day"].isin(set(days)), list(ROW_COLUMNS)]
    if kept.empty:
        return kept.reset_index(drop=True)
    kept = kept.reset_index(drop=True)
    cells = kept[["user_id", "category", "day"]].drop_duplicates().reset_index(drop=True)
    cells["_rank"] = pd.Series(_cell_rank_key(cells), index=cells.index).groupby(cells["user_id"]).rank(method="first")
    cells = cells[cells["_rank"] <= spec.max_cells_per_user].drop(columns="_rank")
    kept = kept.merge(cells, on=["user_id", "category", "day"], how="inner", sort=False)
    kept = kept[kept.groupby(["user_id", "category", "day"], sort=False).cumcount() < spec.max_rows_per_cell]
    kept = kept.assign(value=kept["value"].astype(float).fillna(spec.lower).clip(spec.lower, spec.upper))
    return kept.reset_index(drop=True)


def exact_cells(bounded: pd.DataFrame, categories: Sequence[str], days: Sequence[str]) -> pd.DataFrame:
    """The exact count and sum of every (category, day) cell of the grid, zero where empty.

    Example:
        >>> rows = pd.DataFrame({"user_id": ["a"], "category": ["Toys"], "day": ["2026-06-01"], "value": [3.0]})
        >>> exact_cells(rows, ["Toys"], ["2026-06-01", "2026-06-02"])[["count", "sum"]].values.tolist()
        [[1.0, 3.0], [0.0, 0.0]]
    """
    grid = pd.MultiIndex.from_product([list(categories), list(days)], names=["category", "day"])
    grouped = bounded.groupby(["category", "day"])["value"].agg(["count", "sum"])
    cells = grouped.reindex(grid, fill_value=0).astype(float).reset_index()
    return cells


def data_fingerprint(exact: pd.DataFrame) -> str:
    """A digest of the exact bounded cells: an identical query over unchanged data has the same one."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(exact, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def release_report(
    spec: ReportSpec,
    rows: pd.DataFrame,
    *,
    categories: Sequence[str],
    days: Sequence[str],
    epsilon: float,
    exact: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One ε-DP release of ``spec`` over the grid ``categories x days``.

    Args:
        spec: the report.
        rows: ``user_id, category, day, value`` rows in time order (unbounded: bounded here).
        categories, days: the public key set (the catalog's categories, the window's days).
        epsilon: the privacy loss of the whole release, split evenly over its noisy vectors.
        exact: the exact cells if already computed by :func:`exact_cells` on the bounded rows.

    Returns:
        A JSON-ready dict: the report, ε and δ, the mechanism, bounds, sensitivities, noise
        scales and ``cells`` (category, day and the released statistics).
    """
    epsilon = check_epsilon(epsilon)
    if not len(categories) or not len(days):
        raise InputError("a report needs at least one category and one day (is the catalog empty?)")
    if exact is None:
        exact = exact_cells(bound_contributions(rows, spec, categories, days), categories, days)
    measures = spec.noisy_measures
    share = epsilon / len(measures)
    noisy: dict[str, np.ndarray] = {}
    scales: dict[str, float] = {}
    for measure in measures:
        values = exact[measure].to_numpy()
        noisy[measure], scales[measure] = laplace_vector(
            values.astype(np.int64) if measure == "count" else values,
            sensitivity=spec.sensitivity(measure),
            epsilon=share,
            integer=measure == "count",
        )
    cells: list[dict[str, Any]] = []
    for index, (category, day) in enumerate(zip(exact["category"], exact["day"], strict=True)):
        cell: dict[str, Any] = {"category": category, "day": day}
        if "count" in spec.statistics:
            cell["count"] = int(noisy["count"][index])
        if "sum" in spec.statistics:
            cell["sum"] = round(float(noisy["sum"][index]), 4)
        if "mean" in spec.statistics:
            count, total = int(noisy["count"][index]), float(noisy["sum"][index])
            # A noisy count below one says too little to divide by: no mean rather than a wild one.
            cell["mean"] = (
                round(min(max(total / count, float(spec.lower)), float(spec.upper)), 4) if count >= 1 else None
            )
        cells.append(cell)
    return {
        "report": spec.name,
        "description": spec.description,
        "epsilon": epsilon,
        "delta": 0.0,
        "mechanism": MECHANISM,
        "epsilon_split": {measure: share for measure in measures},
        "noise_scale": scales,
        "sensitivity": {measure: spec.sensitivity(measure) for measure in measures},
        "bounds": {
            "value": spec.value,
            "clamp": [spec.lower, spec.upper],
            "max_rows_per_cell_per_user": spec.max_rows_per_cell,
            "max_cells_per_user": spec.max_cells_per_user,
            "unit_of_privacy": "one customer (all their rows); guest orders count as one customer each",
        },
        "spec": asdict(spec),
        "categories": list(categories),
        "days": list(days),
        "cells": cells,
    }
