"""Purchase histories summarised as frequency, recency, age and spend, and the CDNOW file reader.

A *transaction* is a customer's purchases on one calendar day (several invoices on one day
count once, as in Fader, Hardie & Lee 2005 and the ``lifetimes`` package). For each customer
with a purchase on or before the calibration end:

- ``frequency`` x: repeat transactions (transactions after the first one);
- ``recency`` t_x: time from the first to the last transaction;
- ``T``: time from the first transaction to the calibration end;
- ``monetary_value``: mean spend of the repeat transactions (0 without one);
- ``first_purchase`` and ``last_purchase`` (dates).

Times are in weeks (``unit="W"``, days / 7, as in the paper) or days (``unit="D"``).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["1997-01-01", "1997-01-01", "1997-01-15", "1997-01-08"]),
    ...     "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> rfm_summary(frame, "1997-01-29")[["frequency", "recency", "T", "monetary_value"]]
                 frequency  recency    T  monetary_value
    customer_id
    a                    1      2.0  4.0            20.0
    b                    0      0.0  3.0             0.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shoplm.errors import InputError

__all__ = ["UNIT_DAYS", "daily_transactions", "holdout_counts", "read_cdnow", "rfm_summary"]

#: length of a time unit in days
UNIT_DAYS = {"W": 7.0, "D": 1.0}

_CDNOW_LAYOUT = "'customer_id date(YYYYMMDD) number_of_cds dollar_value', separated by spaces"


def _unit_days(unit: str) -> float:
    if unit not in UNIT_DAYS:
        raise InputError(f"time unit must be 'W' (weeks) or 'D' (days), not {unit!r}")
    return UNIT_DAYS[unit]


def daily_transactions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and purchase day: ``customer_id``, ``date``, ``amount`` (summed).

    Guests (``customer_id == ""``) and return lines (``is_return``, when the column exists) are
    left out: a return is not a purchase.

    Args:
        frame: transactions with at least ``customer_id``, ``timestamp``, ``amount``.

    Returns:
        The daily frame, sorted by customer and date.
    """
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in frame.columns]
    if missing:
        raise InputError("transactions lack columns: " + ", ".join(missing))
    keep = frame["customer_id"].astype(str) != ""
    if "is_return" in frame.columns:
        keep &= ~frame["is_return"].astype(bool)
    rows = frame.loc[keep, ["customer_id", "timestamp", "amount"]]
    daily = (
        rows.assign(customer_id=rows["customer_id"].astype(str), date=pd.to_datetime(rows["timestamp"]).dt.normalize())
        .groupby(["customer_id", "date"], sort=True, observed=True)["amount"]
        .sum()
        .reset_index()
    )
    return daily


def rfm_summary(
    frame: pd.DataFrame, calibration_end: str | pd.Timestamp, unit: str = "W", *, daily: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Frequency / recency / T / monetary value per customer, from purchases up to ``calibration_end``.

    Args:
        frame: transactions (``customer_id``, ``timestamp``, ``amount``[, ``is_return``]).
        calibration_end: last day of the calibration period (inclusive).
        unit: ``"W"`` weeks or ``"D"`` days.
        daily: the result of :func:`daily_transactions` on ``frame``, to save recomputing it.

    Returns:
        A frame indexed by ``customer_id`` (see the module docstring); empty when nobody bought.
    """
    days_per_unit = _unit_days(unit)
    end = pd.Timestamp(calibration_end).normalize()
    daily = daily_transactions(frame) if daily is None else daily
    daily = daily[daily["date"] <= end]
    grouped = daily.groupby("customer_id", sort=True)
    first = grouped["date"].min()
    last = grouped["date"].max()
    count = grouped["date"].size()
    total = grouped["amount"].sum()
    first_amount = grouped["amount"].first()
    frequency = (count - 1).astype(np.int64)
    repeat_spend = (total - first_amount).where(frequency > 0, 0.0)
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first).dt.days / days_per_unit,
            "T": (end - first).dt.days / days_per_unit,
            "monetary_value": (repeat_spend / frequency.where(frequency > 0, 1)).astype(float),
            "first_purchase": first,
            "last_purchase": last,
        }
    )
    summary.index.name = "customer_id"
    return summary


def holdout_counts(
    frame: pd.DataFrame,
    calibration_end: str | pd.Timestamp,
    periods: float,
    unit: str = "W",
    *,
    daily: pd.DataFrame | None = None,
) -> pd.Series:
    """Transactions per customer in the ``periods`` units after ``calibration_end`` (0 when none).

    Args:
        frame: transactions, as for :func:`rfm_summary`.
        calibration_end: last day of the calibration period; the holdout starts the day after.
        periods: holdout length in ``unit``.
        unit: ``"W"`` or ``"D"``.
        daily: the result of :func:`daily_transactions`, to save recomputing it.

    Returns:
        Counts indexed by ``customer_id`` (only customers with a holdout purchase).
    """
    end = pd.Timestamp(calibration_end).normalize()
    stop = end + pd.Timedelta(days=periods * _unit_days(unit))
    daily = daily_transactions(frame) if daily is None else daily
    inside = daily[(daily["date"] > end) & (daily["date"] <= stop)]
    return inside.groupby("customer_id").size().astype(np.int64)


def read_cdnow(path: str | Path) -> pd.DataFrame:
    """Read the CDNOW master file (``customer_id date number_of_cds dollar_value`` per line).

    A first line of column names is allowed. Any other line that does not hold four fields,
    a YYYYMMDD date, a whole number of CDs and a dollar value raises an error naming the line.

    Args:
        path: the text file.

    Returns:
        A transactions-like frame: ``customer_id`` (str), ``timestamp``, ``quantity``, ``amount``.

    Raises:
        InputError: the file is missing, empty, or a line is malformed (``line=`` its number).
    """
    source = Path(path)
    if not source.is_file():
        raise InputError("no such file", path=source)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text file ({exc.reason})", path=source) from exc
    numbers: list[int] = []
    rows: list[list[str]] = []
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        if not rows and not numbers and not fields[0].isdigit():
            continue  # the header line
        if len(fields) != 4:
            raise InputError(f"expected 4 fields ({_CDNOW_LAYOUT}), found {len(fields)}", path=source, line=number)
        numbers.append(number)
        rows.append(fields)
    if not rows:
        raise InputError(f"no transaction line ({_CDNOW_LAYOUT})", path=source)
    table = np.array(rows, dtype=str)
    raw_dates = pd.Series(table[:, 1])
    dates = pd.to_datetime(raw_dates, format="%Y%m%d", errors="coerce")
    dates[~raw_dates.str.fullmatch(r"\d{8}")] = pd.NaT  # strptime would accept 1997011
    quantity = pd.to_numeric(pd.Series(table[:, 2]), errors="coerce")
    amount = pd.to_numeric(pd.Series(table[:, 3]), errors="coerce")
    checks = [
        (dates.isna(), "date", "a date as YYYYMMDD"),
        (quantity.isna() | (quantity % 1 != 0) | (quantity < 0), "number_of_cds", "a whole number ≥ 0"),
        (amount.isna() | ~np.isfinite(amount.to_numpy(dtype=float, na_value=np.nan)), "dollar_value", "a number"),
    ]
    for column, (bad, field, wanted) in enumerate(checks, start=1):
        if bad.any():
            at = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{field} must be {wanted}, found {rows[at][column]!r}",
                path=source,
                line=numbers[at],
                field=field,
            )
    return pd.DataFrame(
        {
            "customer_id": table[:, 0].astype(str),
            "timestamp": dates.to_numpy(),
            "quantity": quantity.to_numpy(dtype=np.int64),
            "amount": amount.to_numpy(dtype=float),
        }
    )
