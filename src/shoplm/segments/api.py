"""The segments domain for the application floor: one call per question, JSON-ready answers.

- :func:`segment_customers`: RFM or k-means segments of a transactions frame, described
  (size, top categories, tags, value), with each customer's segment;
- :func:`basket_rules_summary`: the basket rules of a transactions frame, the top ones first.

Both read the shared transactions frame (:mod:`shoplm.ingest.transactions`: from a file, or
built by the application floor from the store's orders) and change nothing stored.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "invoice_id": ["1", "1", "2", "2"], "customer_id": ["a", "a", "b", "b"],
    ...     "item_id": ["x", "y", "x", "y"], "description": ["MUG", "CUP", "MUG", "CUP"],
    ...     "country": ["UK"] * 4, "timestamp": pd.to_datetime(["2024-01-01"] * 2 + ["2024-02-01"] * 2),
    ...     "quantity": [1] * 4, "unit_price": [2.0] * 4, "amount": [2.0] * 4, "is_return": [False] * 4})
    >>> result = segment_customers(frame, method="rfm")
    >>> result.to_dict()["customers"], sorted(result.assignment["segment"])
    (2, ['hibernating', 'new'])
    >>> basket_rules_summary(frame, min_support=0.5)["top_rules"][0]["consequents"]
    ['y']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.ingest.transactions import check_transactions
from shoplm.segments.basket import BasketRules
from shoplm.segments.describe import describe_segments
from shoplm.segments.profiles import ProfileSegments
from shoplm.segments.rfm import RFM_SEGMENTS, RFMSegments

METHODS = ("rfm", "kmeans")


@dataclass
class SegmentsResult:
    """Segments of a shop's customers.

    Attributes:
        method: ``rfm`` or ``kmeans``.
        segments: one description per segment (see :func:`~shoplm.segments.describe.describe_segments`).
        assignment: one row per customer: ``customer_id``, ``segment`` and the measures behind it.
        model: the fitted segmenter (``assign`` segments other frames; ``save`` keeps it).
        details: how the segments were made (k and the silhouette scores for k-means).
    """

    method: str
    segments: list[dict[str, Any]]
    assignment: pd.DataFrame
    model: Estimator
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: method, customers, details and the segment descriptions (no per-customer rows)."""
        return {
            "method": self.method,
            "customers": len(self.assignment),
            "details": self.details,
            "segments": self.segments,
        }


def segment_customers(
    transactions: pd.DataFrame,
    *,
    method: str = "rfm",
    n_segments: int | None = None,
    item_category: Mapping[str, str] | None = None,
    seed: int = 0,
) -> SegmentsResult:
    """Segment the customers of a transactions frame and describe every segment.

    Args:
        transactions: the shared transactions frame (guests, ``customer_id == ""``, are left out).
        method: ``rfm`` (quintile scores, named segments) or ``kmeans`` (profile vectors).
        n_segments: k-means only: how many segments (None: chosen by silhouette).
        item_category: item id -> category for the top categories (None: description words).
        seed: k-means only: random seed.

    Returns:
        A :class:`SegmentsResult`.

    Raises:
        InputError: an unknown method, missing columns, or no known customer.
    """
    check_transactions(transactions)
    if method not in METHODS:
        raise InputError(f"unknown segmentation method {method!r}: use one of {', '.join(METHODS)}")
    if method == "rfm":
        if n_segments is not None:
            raise InputError("RFM segments are the named ones: --segments applies to kmeans only")
        rfm = RFMSegments().fit(transactions)
        assignment = rfm.assign(transactions)
        details = {
            "scores": "quintiles of recency (days), frequency (invoices), monetary (net revenue); names from R x F",
            "edges": {
                "recency_days": rfm.recency_edges_.round(2).tolist(),
                "frequency": rfm.frequency_edges_.round(2).tolist(),
                "monetary": rfm.monetary_edges_.round(2).tolist(),
            },
        }
        segments = describe_segments(transactions, assignment, item_category=item_category, order=RFM_SEGMENTS)
        return SegmentsResult(method, segments, assignment, rfm, details)
    profiles = ProfileSegments(n_clusters=n_segments, seed=seed).fit(transactions)
    assignment = profiles.assign(transactions)
    details = {
        "k": len(profiles.centers_),
        "silhouette_by_k": {str(k): v for k, v in profiles.silhouettes_.items()},
        "features": f"purchase mix ({profiles.components_.shape[0]} SVD axes) + log recency, frequency, revenue",
    }
    segments = describe_segments(transactions, assignment, item_category=item_category)
    return SegmentsResult(method, segments, assignment, profiles, details)


def basket_rules_summary(
    transactions: pd.DataFrame,
    *,
    min_support: float = 0.01,
    min_confidence: float = 0.1,
    max_len: int | None = 3,
    top: int = 20,
    by: str = "lift",
) -> dict[str, Any]:
    """Mine the basket rules of a transactions frame; JSON-ready counts and the ``top`` rules.

    Args:
        transactions: the shared transactions frame (return lines are left out).
        min_support, min_confidence, max_len: see :class:`~shoplm.segments.basket.BasketRules`.
        top: how many rules to list.
        by: ``lift``, ``confidence`` or ``support``: the order of the list.

    Returns:
        ``{"baskets", "return_lines_left_out", "frequent_itemsets", "rules", "min_support",
        "min_confidence", "top_rules": [...]}``.
    """
    model = BasketRules(min_support=min_support, min_confidence=min_confidence, max_len=max_len).fit(transactions)
    return {
        "baskets": model.n_baskets_,
        "return_lines_left_out": model.return_lines_,
        "frequent_itemsets": model.n_itemsets_,
        "rules": model.n_rules,
        "min_support": min_support,
        "min_confidence": min_confidence,
        "top_rules": model.top_rules(top, by=by),
    }
