"""Lifetime value per customer from a transactions frame, in one call (BG/NBD + Gamma-Gamma).

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> days = [(f"c{c}", int(d)) for c in range(60) for d in rng.choice(120, 1 + c % 4, replace=False)]
    >>> frame = pd.DataFrame({"customer_id": [c for c, _ in days],
    ...     "timestamp": [pd.Timestamp("2011-01-01") + pd.Timedelta(days=d) for _, d in days],
    ...     "amount": rng.uniform(10, 50, len(days))})
    >>> table = lifetime_values(frame, periods=12)
    >>> list(table.columns)
    ['frequency', 'recency', 'T', 'monetary_value', 'p_alive', 'expected_purchases', 'expected_spend', 'clv']
    >>> bool((table["clv"] >= 0).all())
    True
"""

from __future__ import annotations

import pandas as pd

from shoplm.customers.bgnbd import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from shoplm.customers.summary import daily_transactions, rfm_summary
from shoplm.errors import InputError

__all__ = ["lifetime_values"]


def _kept_share(frame: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """Per customer: 1 - returned / bought value up to ``end`` (0 when everything came back)."""
    known = frame[
        (frame["customer_id"].astype(str) != "") & (frame["timestamp"] < end.normalize() + pd.Timedelta(days=1))
    ]
    returned = known["is_return"].astype(bool)
    bought = known.loc[~returned].groupby("customer_id")["amount"].sum()
    back = -known.loc[returned].groupby("customer_id")["amount"].sum()
    share = 1.0 - back.reindex(bought.index, fill_value=0.0) / bought.where(bought > 0)
    return share.clip(0.0, 1.0).fillna(1.0)


def lifetime_values(
    frame: pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    *,
    periods: int = 12,
    period_weeks: float = 52.0 / 12.0,
    discount_rate: float = 0.01,
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma fitted on ``frame`` up to ``as_of``, then CLV per customer.

    Spend is net of returns when the frame has ``is_return``: each customer's mean spend is
    scaled by the share of the value they bought that they kept.

    Fallback, documented: with fewer than 2 repeat buyers of positive spend, Gamma-Gamma cannot
    be fitted and every customer's expected spend is the mean spend per purchase day; with no
    repeat purchase at all, BG/NBD has nothing to learn and this raises :class:`InputError`.

    Args:
        frame: transactions (``customer_id``, ``timestamp``, ``amount``[, ``is_return``]).
        as_of: last day of the history used (default: the last line's day).
        periods: months (or other periods) ahead.
        period_weeks: length of a period in weeks.
        discount_rate: per period.

    Returns:
        Per customer (``customer_id`` index): the summary columns, ``p_alive``,
        ``expected_purchases`` over the horizon, ``expected_spend`` per purchase and ``clv``.
    """
    if frame.empty:
        raise InputError("no transactions to value")
    end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(frame["timestamp"].max())
    summary = rfm_summary(frame, end, "W")
    if summary.empty or summary["frequency"].sum() == 0:
        raise InputError("no customer bought twice before the valuation date: BG/NBD has nothing to learn from")
    x, t_x, T, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    if "is_return" in frame.columns:  # spend net of what came back: a cancelled order is not value
        m = m * _kept_share(frame, end).reindex(summary.index, fill_value=1.0)
        summary = summary.assign(monetary_value=m)
    purchases = BetaGeoModel().fit(x, t_x, T)
    table = summary[["frequency", "recency", "T", "monetary_value"]].copy()
    table["p_alive"] = purchases.probability_alive(x, t_x, T)
    table["expected_purchases"] = purchases.expected_purchases(periods * period_weeks, x, t_x, T)
    try:
        spend = GammaGammaModel().fit(x, m)
    except InputError:
        spend = None
    if spend is not None and spend.params_["q"] > 1:
        table["expected_spend"] = spend.expected_spend(x, m)
        table["clv"] = customer_lifetime_value(
            purchases, spend, x, t_x, T, m, periods=periods, period_length=period_weeks, discount_rate=discount_rate
        )
    else:  # the documented fallback: the mean spend of a purchase day, same discounting
        daily = daily_transactions(frame)
        daily_mean = float(daily.loc[daily["date"] <= end.normalize(), "amount"].mean())
        table["expected_spend"] = daily_mean
        previous, total = 0.0, 0.0
        for k in range(1, periods + 1):
            cumulative = purchases.expected_purchases(k * period_weeks, x, t_x, T)
            total = total + daily_mean * (cumulative - previous) / (1 + discount_rate) ** k
            previous = cumulative
        table["clv"] = total
    return table
