"""Differentially private reports of the store, paid for from the dataset's persisted budget.

:func:`release` reads the report's rows for the window, bounds each customer's contribution,
and asks the ledger (``store.privacy``) before anything noisy leaves: the ε is taken from the
dataset's budget in the same transaction that records the release, or the release is refused
with :class:`~shoplm.errors.ConflictError` (HTTP 409, exit 2).

A repeated query never gets fresh noise for free: the ledger keys each release by the query
(report, ε, window, bounds) *and* a digest of the exact data it read. Asking the same again over
unchanged data returns the recorded release (the same noise, nothing spent); once the data has
changed (a new order in the window), the query is a new release and is charged again.

Example:
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> settings = Settings(privacy={"epsilon_budget": 1.0})
    >>> [r["name"] for r in list_reports()][:2]
    ['daily-sales', 'daily-revenue']
    >>> budget(store, settings)["remaining"]
    1.0
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from shoplm.config import Settings
from shoplm.errors import ConflictError, InputError
from shoplm.privacy.mechanisms import check_epsilon
from shoplm.privacy.reports import (
    REPORTS,
    ReportSpec,
    bound_contributions,
    data_fingerprint,
    exact_cells,
    get_report,
    release_report,
)
from shoplm.store import Store

__all__ = ["budget", "category_of", "list_reports", "release", "report_rows", "report_spec", "window_days"]

UNCATEGORISED = "(uncategorised)"
MAX_WINDOW_DAYS = 366
DAY_MS = 86_400_000


def list_reports(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every report: name, what it measures, its statistics and bounds (the shop's own, given ``settings``)."""
    specs = [report_spec(settings, name) if settings is not None else REPORTS[name] for name in REPORTS]
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "source": spec.source,
            "statistics": list(spec.statistics),
            "clamp": [spec.lower, spec.upper],
            "max_rows_per_cell_per_user": spec.max_rows_per_cell,
            "max_cells_per_user": spec.max_cells_per_user,
        }
        for spec in specs
    ]


def _parse_day(value: str | date | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{name} must be a day as YYYY-MM-DD, not {value!r}", field=name) from None


def window_days(
    start: str | date | None, end: str | date | None, *, default_days: int, today: date | None = None
) -> list[str]:
    """The calendar days (UTC, ISO) from ``start`` to ``end`` inclusive: the report's public days.

    Without ``end``, the window ends today; without ``start``, it spans ``default_days``.

    Example:
        >>> window_days("2026-06-01", "2026-06-03", default_days=30)
        ['2026-06-01', '2026-06-02', '2026-06-03']
    """
    last = _parse_day(end, "end") or today or datetime.now(UTC).date()
    first = _parse_day(start, "start") or last - timedelta(days=default_days - 1)
    if first > last:
        raise InputError(f"the window starts ({first}) after it ends ({last})", field="start")
    count = (last - first).days + 1
    if count > MAX_WINDOW_DAYS:
        raise InputError(f"a report covers at most {MAX_WINDOW_DAYS} days, not {count}", field="start")
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def category_of(path: pd.Series) -> pd.Series:
    """The top level of a catalog category path (``'Toys > Puzzles'`` -> ``'Toys'``); empty ones are uncategorised."""
    top = path.fillna("").astype(str).str.split(">", n=1).str[0].str.strip()
    return top.where(top != "", UNCATEGORISED)


def report_spec(settings: Settings, name: str) -> ReportSpec:
    """Report ``name`` with the shop's own bounds from ``settings.privacy.bounds`` over its defaults.

    Example:
        >>> report_spec(Settings(privacy={"bounds": {"daily-sales": {"upper": 50}}}), "daily-sales").upper
        50.0
    """
    spec = get_report(name)
    unknown = sorted(set(settings.privacy.bounds) - set(REPORTS))
    if unknown:  # a misspelt name would otherwise leave the defaults in force without a word
        raise InputError(f"privacy.bounds names no report {unknown}: the reports are {', '.join(REPORTS)}")
    override = settings.privacy.bounds.get(name)
    if override is None:
        return spec
    changes = {k: v for k, v in override.model_dump().items() if v is not None}
    if "upper" in changes and changes["upper"] <= spec.lower:
        raise InputError(f"privacy.bounds.{name}.upper must be above {spec.lower:g}", field="upper")
    return replace(spec, **changes)


def report_rows(store: Store, spec: ReportSpec, days: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The report's rows (user_id, category, day, value; oldest first) in the window, and the catalog's categories."""
    start_ms = int(datetime.fromisoformat(days[0]).replace(tzinfo=UTC).timestamp() * 1000)
    end_ms = int(datetime.fromisoformat(days[-1]).replace(tzinfo=UTC).timestamp() * 1000) + DAY_MS
    catalog = store.privacy.item_categories()
    catalog = catalog.assign(category=category_of(catalog["category"]))
    categories = sorted(set(catalog["category"]))
    if spec.source == "sales":
        raw = store.privacy.sales_rows(start_ms, end_ms)
        if spec.value == "units":
            value = raw["quantity"].astype(float)
        else:
            value = raw["quantity"].astype(float) * raw["unit_price"].astype(float)
    elif spec.source == "views":
        raw = store.privacy.view_rows(start_ms, end_ms)
        value = pd.Series(1.0, index=raw.index)
    else:
        raw = store.privacy.rating_rows(start_ms, end_ms)
        value = raw["rating"].astype(float)
    by_item = dict(zip(catalog["item_id"], catalog["category"], strict=True))
    rows = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str),
            "category": raw["item_id"].map(by_item),  # items the catalog lacks fall outside the key set
            "day": pd.to_datetime(raw["ts_ms"].astype("int64"), unit="ms", utc=True).dt.strftime("%Y-%m-%d"),
            "value": value,
        }
    )
    return rows, categories


def _query_key(dataset: str, spec: ReportSpec, epsilon: float, days: list[str], exact: pd.DataFrame) -> str:
    query = {
        "dataset": dataset,
        "report": spec.name,
        "epsilon": repr(epsilon),
        "window": [days[0], days[-1]],
        "bounds": [spec.lower, spec.upper, spec.max_rows_per_cell, spec.max_cells_per_user],
    }
    digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode())
    digest.update(data_fingerprint(exact).encode())
    return digest.hexdigest()


def budget(store: Store, settings: Settings, *, limit: int = 100) -> dict[str, Any]:
    """The dataset's budget: total, spent, remaining ε and its latest releases (without their cells)."""
    dataset = settings.privacy.dataset
    spent = store.privacy.spent(dataset)
    total = settings.privacy.epsilon_budget
    return {
        "dataset": dataset,
        "epsilon_budget": total,
        "spent": round(spent, 12),
        "remaining": round(max(total - spent, 0.0), 12),
        "releases": store.privacy.releases(dataset, limit=limit),
    }


def release(
    store: Store,
    settings: Settings,
    name: str,
    *,
    epsilon: float,
    start: str | date | None = None,
    end: str | date | None = None,
    key_id: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Release report ``name`` over a window with ε from the dataset's budget.

    Args:
        store: the shop's store (its ledger is ``store.privacy``).
        settings: ``settings.privacy`` names the dataset and its total budget.
        name: a report of :data:`shoplm.privacy.reports.REPORTS`.
        epsilon: the privacy loss to spend (> 0, finite).
        start, end: the window's first and last day (YYYY-MM-DD, UTC); default the last
            ``settings.privacy.window_days`` days up to today.
        key_id: the acting API key's id, recorded in the ledger.
        today: the day taken as today (for tests).

    Returns:
        The release (see :func:`shoplm.privacy.reports.release_report`) with ``release_id``,
        ``released_ms``, ``repeated`` and ``budget`` (total, spent, remaining).

    Raises:
        InputError: ε not a finite positive number, or a bad window.
        NotFoundError: an unknown report.
        ConflictError: ε would pass the dataset's remaining budget.
    """
    spec = report_spec(settings, name)
    epsilon = check_epsilon(epsilon)
    days = window_days(start, end, default_days=settings.privacy.window_days, today=today)
    rows, categories = report_rows(store, spec, days)
    exact = exact_cells(bound_contributions(rows, spec, categories, days), categories, days)
    dataset = settings.privacy.dataset
    total = settings.privacy.epsilon_budget
    query_key = _query_key(dataset, spec, epsilon, days, exact)
    stored = store.privacy.find(dataset, query_key)
    if stored is None:
        body = release_report(spec, rows, categories=categories, days=days, epsilon=epsilon, exact=exact)
        body["window"] = {"start": days[0], "end": days[-1]}
        outcome = store.privacy.spend(
            dataset,
            budget=total,
            report=spec.name,
            query_key=query_key,
            epsilon=epsilon,
            parameters={"window": body["window"], "bounds": body["bounds"]},
            body=body,
            key_id=key_id,
        )
        if outcome.release is None:
            left = max(total - outcome.spent, 0.0)
            raise ConflictError(
                f"privacy budget of dataset {dataset!r} would be exceeded: this release costs ε={epsilon:g}, "
                f"{outcome.spent:g} of {total:g} is spent and {left:g} is left; nothing was released",
                code="privacy_budget_exhausted",
            )
        entry, repeated, spent = outcome.release, outcome.repeated, outcome.spent
    else:
        entry, repeated, spent = stored, True, store.privacy.spent(dataset)
    return {
        **entry["body"],
        "dataset": dataset,
        "release_id": entry["release_id"],
        "released_ms": entry["created_ms"],
        "repeated": repeated,
        "budget": {"epsilon_budget": total, "spent": round(spent, 12), "remaining": round(max(total - spent, 0.0), 12)},
    }
