"""RFM: each customer's recency, frequency and monetary value, scored 1-5 by quintile, and named.

Per customer (guests, ``customer_id == ""``, have no history to segment and are left out):

- **R**ecency: days from the customer's last purchase to ``as_of`` (default: the day after
  the frame's last line); fewer days score higher;
- **F**requency: distinct sale invoices;
- **M**onetary: net revenue, sales minus returns.

Scores are quintiles learned at ``fit``: the 20/40/60/80 % quantiles of each measure are
the edges, so a customer scores 1 + the number of edges their value passes (recency counted
the other way round). Values tied on an edge share a score, so when many customers share a
value (a third of Online Retail's customers bought once) the quintiles are uneven rather than
ties split at random. ``assign`` scores any frame against the edges learned at ``fit``.

Names, the classic RFM map on the R and F scores (rows R 5..1, columns F 1..5):

======  ==============  ===================  ===================  ===========  ===========
R \\ F  1               2                    3                    4            5
======  ==============  ===================  ===================  ===========  ===========
5       new             potential loyalist   potential loyalist   champions    champions
4       promising       potential loyalist   potential loyalist   loyal        loyal
3       about to sleep  about to sleep       need attention       loyal        loyal
2       hibernating     hibernating          at risk              at risk      cannot lose
1       hibernating     hibernating          at risk              at risk      cannot lose
======  ==============  ===================  ===================  ===========  ===========

M does not change the name (frequency and spend move together; the map follows the common
R×F grid); it is reported in each segment's value and tags.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "invoice_id": ["1", "2", "3", "4"], "customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-03-30", "2023-06-01"]),
    ...     "amount": [50.0, 60.0, 70.0, 5.0], "is_return": [False] * 4})
    >>> model = RFMSegments().fit(frame)
    >>> model.assign(frame)[["customer_id", "R", "F", "M", "segment"]].values.tolist()
    [['a', 5, 5, 5, 'champions'], ['b', 1, 1, 1, 'hibernating']]
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator

RFM_COLUMNS = ["invoice_id", "customer_id", "timestamp", "amount", "is_return"]

#: (R score, F score) -> segment name; rows R = 1..5, columns F = 1..5 (see the module docstring).
_GRID = [
    ["hibernating", "hibernating", "at risk", "at risk", "cannot lose"],
    ["hibernating", "hibernating", "at risk", "at risk", "cannot lose"],
    ["about to sleep", "about to sleep", "need attention", "loyal", "loyal"],
    ["promising", "potential loyalist", "potential loyalist", "loyal", "loyal"],
    ["new", "potential loyalist", "potential loyalist", "champions", "champions"],
]
#: Every name, best customers first (the order segments are listed in).
RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential loyalist",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "cannot lose",
    "hibernating",
)
_QUANTILES = (0.2, 0.4, 0.6, 0.8)


def rfm_name(r: int, f: int) -> str:
    """The segment name of R and F scores (1-5 each).

    Example:
        >>> rfm_name(5, 5), rfm_name(5, 1), rfm_name(1, 5), rfm_name(1, 1)
        ('champions', 'new', 'cannot lose', 'hibernating')
    """
    if not (1 <= r <= 5 and 1 <= f <= 5):
        raise InputError(f"RFM scores run from 1 to 5, got R={r}, F={f}")
    return _GRID[r - 1][f - 1]


def customer_rfm(frame: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per customer: ``recency_days``, ``frequency`` (sale invoices), ``monetary`` (net revenue).

    Args:
        frame: transactions (``invoice_id, customer_id, timestamp, amount, is_return``).
        as_of: the day recency is counted to (default: the day after the frame's last line).

    Returns:
        One row per customer with a sale, sorted by ``customer_id``; also ``first_days``
        (days since the first purchase).
    """
    missing = [c for c in RFM_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError("RFM needs transactions: missing column(s) " + ", ".join(missing))
    known = frame[frame["customer_id"].astype(str) != ""]
    sales = known[~known["is_return"].to_numpy(bool)]
    if sales.empty:
        raise InputError("no sale by a known customer: nothing to segment (guest lines have no customer_id)")
    if as_of is None:
        as_of = pd.Timestamp(frame["timestamp"].max()).normalize() + pd.Timedelta(days=1)
    by_customer = sales.groupby(sales["customer_id"].astype(str))
    summary = pd.DataFrame(
        {
            "last": by_customer["timestamp"].max(),
            "first": by_customer["timestamp"].min(),
            "frequency": by_customer["invoice_id"].nunique(),
        }
    )
    net = known.groupby(known["customer_id"].astype(str))["amount"].sum()
    summary["monetary"] = net.reindex(summary.index).fillna(0.0).astype(np.float64)
    day = np.timedelta64(1, "D")
    summary["recency_days"] = ((as_of - summary["last"]) / day).astype(np.float64)
    summary["first_days"] = ((as_of - summary["first"]) / day).astype(np.float64)
    summary.index.name = "customer_id"
    return summary[["recency_days", "frequency", "monetary", "first_days"]].sort_index().reset_index()


def _score(values: np.ndarray, edges: np.ndarray, *, lower_is_better: bool = False) -> np.ndarray:
    """1 + how many quintile edges a value passes (ties on an edge stay below it)."""
    if lower_is_better:
        return (len(edges) + 1 - np.searchsorted(edges, values, side="left")).astype(np.int64)
    return (1 + np.searchsorted(edges, values, side="left")).astype(np.int64)


class RFMSegments(Estimator):
    """Quintile R, F, M scores and the classic segment names; ``assign`` segments any frame.

    Args:
        as_of: the date recency is counted to, ISO text (None: the day after each frame's last line).
    """

    def __init__(self, as_of: str | None = None) -> None:
        self.as_of = as_of

    def _as_of(self) -> pd.Timestamp | None:
        if self.as_of is None:
            return None
        try:
            return pd.Timestamp(self.as_of)
        except ValueError as exc:
            raise InputError(f"as_of must be a date, got {self.as_of!r}") from exc

    def fit(self, transactions: pd.DataFrame, **_: Any) -> Self:
        """Learn the quintile edges of recency, frequency and monetary value; return self."""
        rfm = customer_rfm(transactions, self._as_of())
        self.recency_edges_ = np.quantile(rfm["recency_days"], _QUANTILES)
        self.frequency_edges_ = np.quantile(rfm["frequency"], _QUANTILES)
        self.monetary_edges_ = np.quantile(rfm["monetary"], _QUANTILES)
        self.n_customers_ = len(rfm)
        return self

    def assign(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """Each customer's R, F, M measures, scores and segment name.

        Args:
            transactions: the shared transactions frame.

        Returns:
            Columns ``customer_id, recency_days, frequency, monetary, first_days, R, F, M, segment``.
        """
        self.check_fitted()
        rfm = customer_rfm(transactions, self._as_of())
        rfm["R"] = _score(rfm["recency_days"].to_numpy(), self.recency_edges_, lower_is_better=True)
        rfm["F"] = _score(rfm["frequency"].to_numpy(), self.frequency_edges_)
        rfm["M"] = _score(rfm["monetary"].to_numpy(), self.monetary_edges_)
        rfm["segment"] = [rfm_name(r, f) for r, f in zip(rfm["R"], rfm["F"], strict=True)]
        return rfm

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "recency_edges": np.asarray(self.recency_edges_, dtype=np.float64),
            "frequency_edges": np.asarray(self.frequency_edges_, dtype=np.float64),
            "monetary_edges": np.asarray(self.monetary_edges_, dtype=np.float64),
        }
        return arrays, {"n_customers": self.n_customers_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.recency_edges_ = np.asarray(arrays["recency_edges"], dtype=np.float64)
        self.frequency_edges_ = np.asarray(arrays["frequency_edges"], dtype=np.float64)
        self.monetary_edges_ = np.asarray(arrays["monetary_edges"], dtype=np.float64)
        self.n_customers_ = int(state["n_customers"])
