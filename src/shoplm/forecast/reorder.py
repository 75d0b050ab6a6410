"""Reorder advice from a forecast with intervals: safety stock, reorder point, order-up-to level
and the newsvendor quantity, and a weekly inventory simulation to compare policies.

Demand over ``n`` weeks is taken as normal with the forecast's summed means and a standard
deviation read from its 95% interval (``(hi - lo) / (2 × 1.96)`` per week, weeks independent, so
variances add). With lead time ``L`` and review period ``R`` (weeks):

- safety stock ``z × σ(L + R)`` with ``z = Φ⁻¹(service level)`` (cycle service level);
- reorder point: mean demand over ``L`` plus the safety stock on ``L``;
- order-up-to level: mean demand over ``L + R`` plus the safety stock;
- newsvendor quantity: the ``cu / (cu + co)`` quantile of demand over ``L + R``, with underage cost
  ``cu`` = price − unit cost (a lost margin) and overage cost ``co`` = the holding cost of a unit
  for the period (unit cost × weekly holding rate × (L + R)).

Example:
    >>> import pandas as pd
    >>> weeks = pd.date_range("2024-01-06", periods=3, freq="W-SAT")
    >>> frame = pd.DataFrame({"unique_id": "10", "ds": weeks, "mean": 10.0, "lo-95": 6.08, "hi-95": 13.92})
    >>> advice = reorder_advice(frame, lead_time=1, review=1, service_level=0.95, on_hand={"10": 5})
    >>> columns = ["demand_mean", "demand_std", "safety_stock", "reorder_point", "order_up_to", "order"]
    >>> advice[columns].round(1).values.tolist()
    [[20.0, 2.8, 4.7, 13.3, 24.7, 20.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoplm.errors import InputError

Z95 = 1.959963984540054


def reorder_advice(
    forecast: pd.DataFrame,
    *,
    lead_time: int = 1,
    review: int = 1,
    service_level: float = 0.95,
    on_hand: Mapping[str, float] | None = None,
    unit_cost: Mapping[str, float] | None = None,
    price: Mapping[str, float] | None = None,
    holding_rate: float = 0.005,
) -> pd.DataFrame:
    """Per series: demand over the protection period, safety stock, reorder point, order quantities.

    Args:
        forecast: rows ``unique_id, ds, mean, lo-95, hi-95`` (what :func:`~shoplm.forecast.forecast` returns).
        lead_time: weeks of demand that pass between an order and its delivery (>= 0); an order
            placed at the end of a week covers the ``lead_time + review`` weeks after it.
        review: weeks between orders (>= 1).
        service_level: wanted probability of no stock-out in a cycle, in (0.5, 1).
        on_hand: stock on hand plus on order per series (missing: 0).
        unit_cost, price: per series, for the newsvendor quantity (missing: no newsvendor figure).
        holding_rate: holding cost per week as a share of the unit cost.

    Returns:
        One row per series: ``unique_id, demand_mean, demand_std, safety_stock, reorder_point,
        order_up_to, order`` (up to the order-up-to level) and ``newsvendor``.

    Raises:
        InputError: bad parameters, missing columns, or a forecast shorter than ``lead_time + review``.
    """
    from scipy.stats import norm

    if not 0.5 < service_level < 1:
        raise InputError(f"service level must be between 0.5 and 1, got {service_level}")
    if lead_time < 0 or review < 1:
        raise InputError(f"lead time must be >= 0 and review >= 1 week, got {lead_time} and {review}")
    missing = sorted({"unique_id", "ds", "mean", "lo-95", "hi-95"} - set(forecast.columns))
    if missing:
        raise InputError("forecast lacks columns: " + ", ".join(missing))
    period = lead_time + review
    frame = forecast.sort_values(["unique_id", "ds"], kind="stable").copy()
    frame["step"] = frame.groupby("unique_id").cumcount() + 1
    short = frame.groupby("unique_id")["step"].max() < period
    if short.any():
        raise InputError(f"the forecast covers fewer than lead time + review = {period} weeks")
    frame["var"] = ((frame["hi-95"] - frame["lo-95"]) / (2 * Z95)) ** 2
    protected = frame[frame["step"] <= period].groupby("unique_id")
    lead = frame[frame["step"] <= lead_time].groupby("unique_id")
    out = pd.DataFrame({"demand_mean": protected["mean"].sum(), "demand_std": np.sqrt(protected["var"].sum())})
    z = float(norm.ppf(service_level))
    out["safety_stock"] = z * out["demand_std"]
    lead_mean = lead["mean"].sum().reindex(out.index).fillna(0.0)
    lead_std = np.sqrt(lead["var"].sum().reindex(out.index).fillna(0.0))
    out["reorder_point"] = lead_mean + z * lead_std
    out["order_up_to"] = out["demand_mean"] + out["safety_stock"]
    stock = pd.Series(on_hand or {}, dtype=float).reindex(out.index).fillna(0.0)
    out["order"] = np.ceil(np.maximum(out["order_up_to"] - stock, 0.0))
    out["newsvendor"] = np.nan
    if unit_cost and price:
        cost = pd.Series(unit_cost, dtype=float).reindex(out.index)
        sell = pd.Series(price, dtype=float).reindex(out.index)
        underage = (sell - cost).clip(lower=0)
        overage = cost * holding_rate * period
        ratio = (underage / (underage + overage)).clip(0.0, 0.999)
        quantile = norm.ppf(ratio.fillna(0.5).to_numpy(), out["demand_mean"], np.maximum(out["demand_std"], 1e-9))
        out["newsvendor"] = np.where(ratio.notna(), np.maximum(quantile, 0.0), np.nan)
    return out.reset_index()


@dataclass
class SimulationResult:
    """What a policy did over the simulated weeks (sums over series, lost sales)."""

    demand: float
    served: float
    lost: float
    average_on_hand: float
    stockout_weeks: int
    orders: int

    @property
    def fill_rate(self) -> float:
        return self.served / self.demand if self.demand > 0 else 1.0

    def as_dict(self) -> dict[str, float]:
        return {
            "fill_rate": round(float(self.fill_rate), 4),
            "lost_units": round(float(self.lost), 1),
            "average_on_hand": round(float(self.average_on_hand), 1),
            "stockout_weeks": self.stockout_weeks,
            "orders": self.orders,
        }


def simulate_order_up_to(
    demand: np.ndarray, targets: np.ndarray, *, lead_time: int = 1, initial: np.ndarray | None = None
) -> SimulationResult:
    """Periodic review, order-up-to, lost sales: each week order ``target - (on hand + on order)``.

    Args:
        demand: actual weekly demand, shape ``(weeks, series)``.
        targets: the policy's order-up-to level decided at the end of each week (same shape).
        initial: stock on hand at the start, per series.
        lead_time: weeks of demand that pass before an order arrives: ordered at the end of week
            ``w``, it is on the shelf at the start of week ``w + 1 + lead_time``.

    Returns:
        The :class:`SimulationResult`; the stock starts at ``initial`` (default: the first
        week's target).

    Example:
        >>> simulate_order_up_to(np.array([[5.0], [5.0], [20.0]]), np.full((3, 1), 10.0), lead_time=0).as_dict()
        {'fill_rate': 0.6667, 'lost_units': 10.0, 'average_on_hand': 3.3, 'stockout_weeks': 1, 'orders': 3}
    """
    demand = np.asarray(demand, dtype=float)
    targets = np.asarray(targets, dtype=float)
    if demand.shape != targets.shape or demand.ndim != 2:
        raise InputError(
            f"demand and targets must have the same (weeks, series) shape: {demand.shape}, {targets.shape}"
        )
    if lead_time < 0:
        raise InputError(f"lead time must be >= 0 weeks, got {lead_time}")
    weeks, n = demand.shape
    on_hand = (targets[0] if initial is None else np.asarray(initial, dtype=float)).copy()
    pipeline = np.zeros((lead_time + 1, n))  # pipeline[i] arrives at the start of week (now + 1 + i)
    served = lost = held = 0.0
    stockouts = orders = 0
    for week in range(weeks):
        on_hand += pipeline[0]
        pipeline = np.vstack([pipeline[1:], np.zeros((1, n))])
        sold = np.minimum(on_hand, demand[week])
        served += float(sold.sum())
        lost += float((demand[week] - sold).sum())
        stockouts += int(((demand[week] - sold) > 1e-9).sum())
        on_hand -= sold
        held += float(on_hand.sum())
        order = np.maximum(np.ceil(targets[week] - on_hand - pipeline.sum(axis=0)), 0.0)
        orders += int((order > 0).sum())
        pipeline[lead_time] += order
    return SimulationResult(
        demand=float(demand.sum()),
        served=served,
        lost=lost,
        average_on_hand=held / weeks if weeks else 0.0,
        stockout_weeks=stockouts,
        orders=orders,
    )
