"""Weekly demand panels from the transactions frame, and the demand class of each series.

Returns, explicitly: the transactions frame (:mod:`shoplm.ingest.transactions`) keeps
cancellations as lines with a negative quantity. Weekly demand is the *net* quantity per SKU and
week (sales minus returns booked that week). A week whose net quantity is negative (more goods
came back than went out) is demand of 0, not negative demand: it is clipped at 0 and counted in
:attr:`DemandPanel.clipped_weeks`, and the units taken back are counted in
:attr:`DemandPanel.returned_units`. A SKU with nothing but returns therefore has an all-zero series.

Service lines (postage, carriage, fees, manual adjustments, gift vouchers: stock codes without a
digit, ``C2``, ``gift_...``) are not products and are left out, counted in
:attr:`DemandPanel.service_lines`.

Weeks end on the weekday of the last transaction, so the newest week is complete; the oldest week
is dropped when the data starts after its first day (a partial week would look like a demand drop).
Weeks with no sale of a SKU are zeros (intermittent demand); a SKU's series starts at the week of
its first sale, so a new product does not look like months of zero demand.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "item_id": ["10A", "10A", "10A", "POST"], "description": ["MUG"] * 3 + ["POSTAGE"],
    ...     "timestamp": pd.to_datetime(["2024-01-04", "2024-01-11", "2024-01-17", "2024-01-17"]),
    ...     "quantity": [5, 3, -4, 1], "unit_price": [2.0, 2.0, 2.0, 9.0]})
    >>> panel = weekly_demand(frame)
    >>> panel.demand["y"].tolist(), panel.clipped_weeks, panel.returned_units, panel.service_lines
    ([5.0, 0.0], 1, 4, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoplm.errors import InputError

#: Syntetos-Boylan cut-offs: average inter-demand interval and squared CV of the non-zero sizes.
ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
#: A series with fewer weeks than this is forecast from similar items (cold start).
MIN_HISTORY_WEEKS = 8
MAX_HORIZON = 52
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")

_NEEDED = ("item_id", "description", "timestamp", "quantity", "unit_price")
_SERVICE_PATTERN = r"^(?:[^0-9]*|C2|gift_.*|TEST.*)$"


@dataclass
class DemandPanel:
    """Weekly demand of every SKU, ready for forecasting.

    Attributes:
        demand: long frame ``unique_id`` (SKU), ``ds`` (week start), ``y`` (units, >= 0).
        items: one row per SKU: ``item_id``, ``description`` (its most frequent one), ``price``
            (median unit price of its sales), ``revenue`` (net), ``first_week``.
        freq: the pandas frequency of ``ds`` (``"W-SAT"``: weeks starting on Saturday).
        weeks: every week of the panel, oldest first.
        clipped_weeks: SKU-weeks whose net quantity was negative and became 0.
        returned_units: units on return lines.
        service_lines: transaction lines left out as service lines (postage, fees, ...).
    """

    demand: pd.DataFrame
    items: pd.DataFrame
    freq: str
    weeks: pd.DatetimeIndex
    clipped_weeks: int = 0
    returned_units: int = 0
    service_lines: int = 0
    notes: list[str] = field(default_factory=list)


def is_service_code(item_ids: pd.Series) -> pd.Series:
    """True for stock codes that are charges, not products (postage, fees, vouchers, tests).

    Example:
        >>> is_service_code(pd.Series(["POST", "C2", "85123A", "gift_0001_20", "DCGS0003"])).tolist()
        [True, True, False, True, False]
    """
    return item_ids.astype(str).str.strip().str.match(_SERVICE_PATTERN, case=False)


def weekly_demand(frame: pd.DataFrame) -> DemandPanel:
    """Weekly net demand per SKU from a transactions frame (see the module docstring for returns).

    Args:
        frame: the transactions frame of :mod:`shoplm.ingest.transactions` (at least
            ``item_id, description, timestamp, quantity, unit_price``).

    Returns:
        The :class:`DemandPanel`.

    Raises:
        InputError: a column is missing, or no product line is left.
    """
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise InputError("transactions frame lacks columns: " + ", ".join(missing))
    service = is_service_code(frame["item_id"])
    lines = frame.loc[~service & frame["timestamp"].notna(), list(_NEEDED)]
    if lines.empty:
        raise InputError("no product line to forecast from (only service lines or no dates)")
    last_day = lines["timestamp"].max().normalize()
    freq = f"W-{last_day.strftime('%a').upper()}"  # weeks end on the last day seen
    week = lines["timestamp"].dt.to_period(freq).dt.start_time
    first_week = week.min()
    notes = []
    if lines["timestamp"].min().normalize() > first_week:
        notes.append(f"partial first week {first_week.date()} dropped")
        keep = week > first_week
        lines, week = lines[keep], week[keep]
        if lines.empty:
            raise InputError("less than one complete week of sales: nothing to forecast")
    start_freq = f"W-{(last_day + pd.Timedelta(days=1)).strftime('%a').upper()}"  # ds: the week's first day
    weeks = pd.date_range(week.min(), week.max(), freq="7D")
    net = lines.assign(ds=week).groupby(["item_id", "ds"], sort=True)["quantity"].sum()
    clipped = int((net < 0).sum())
    wide = net.clip(lower=0).astype(float).unstack(fill_value=0.0).reindex(columns=weeks, fill_value=0.0)
    sold = lines[lines["quantity"] > 0]
    first = wide.gt(0).idxmax(axis=1).where(wide.gt(0).any(axis=1), weeks[0])
    long = wide.stack().rename("y").rename_axis(["unique_id", "ds"]).reset_index()
    long = long[long["ds"] >= long["unique_id"].map(first)].reset_index(drop=True)
    items = pd.DataFrame(
        {
            "item_id": wide.index,
            "description": lines.groupby("item_id")["description"].agg(_most_frequent).reindex(wide.index).to_numpy(),
            "price": sold.groupby("item_id")["unit_price"].median().reindex(wide.index).fillna(0.0).to_numpy(),
            "revenue": (lines["quantity"] * lines["unit_price"]).groupby(lines["item_id"]).sum().reindex(wide.index),
            "first_week": first.to_numpy(),
        }
    ).reset_index(drop=True)
    return DemandPanel(
        demand=long,
        items=items,
        freq=start_freq,
        weeks=weeks,
        clipped_weeks=clipped,
        returned_units=int(-lines.loc[lines["quantity"] < 0, "quantity"].sum()),
        service_lines=int(service.sum()),
        notes=notes,
    )


def _most_frequent(values: pd.Series) -> str:
    counts = values.astype(str).value_counts()
    return str(counts.index[0]) if len(counts) else ""


def check_horizon(horizon: int) -> int:
    """The horizon as an int, or :class:`InputError` unless 1 <= horizon <= 52.

    Example:
        >>> check_horizon(4)
        4
        >>> check_horizon(0)
        Traceback (most recent call last):
        ...
        shoplm.errors.InputError: forecast horizon must be 1 to 52 weeks, got 0
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or not 1 <= horizon <= MAX_HORIZON:
        raise InputError(f"forecast horizon must be 1 to {MAX_HORIZON} weeks, got {horizon!r}")
    return int(horizon)


def demand_class(values: np.ndarray) -> str:
    """Syntetos-Boylan class of a demand history: smooth, erratic, intermittent or lumpy.

    ADI is the number of weeks per non-zero week, CV² the squared coefficient of variation of the
    non-zero sizes; an all-zero history counts as lumpy (no demand to smooth).

    Example:
        >>> demand_class(np.array([5, 6, 5, 7, 6.0])), demand_class(np.array([0, 0, 4, 0, 0, 4.0]))
        ('smooth', 'intermittent')
    """
    values = np.asarray(values, dtype=float)
    nonzero = values[values > 0]
    if len(nonzero) == 0:
        return "lumpy"
    adi = len(values) / len(nonzero)
    cv2 = float(np.var(nonzero) / np.mean(nonzero) ** 2)
    if adi < ADI_CUTOFF:
        return "smooth" if cv2 < CV2_CUTOFF else "erratic"
    return "intermittent" if cv2 < CV2_CUTOFF else "lumpy"


def naive_scale(values: np.ndarray) -> float:
    """Mean absolute one-step naive error of a history (the MASE denominator); 0 when undefined.

    Example:
        >>> naive_scale(np.array([1.0, 3.0, 2.0]))
        1.5
    """
    values = np.asarray(values, dtype=float)
    return float(np.mean(np.abs(np.diff(values)))) if len(values) >= 2 else 0.0
