"""Metrics and evaluation protocols shared by every domain (recommendation first).

Example:
    >>> from shoplm.evaluate import ranking_metrics
    >>> ranking_metrics([0, 2, 30], ks=(5,))["HR@5"]
    0.6666666666666666
"""

from shoplm.evaluate.metrics import (
    DEFAULT_KS,
    catalog_coverage,
    hit_rate,
    mrr,
    ndcg,
    rank_of_target,
    ranking_metrics,
)
from shoplm.evaluate.splits import (
    LeaveOneOut,
    TemporalSplit,
    cold_start_mask,
    leave_one_out,
    temporal_split,
)

__all__ = [
    "DEFAULT_KS",
    "LeaveOneOut",
    "TemporalSplit",
    "catalog_coverage",
    "cold_start_mask",
    "hit_rate",
    "leave_one_out",
    "mrr",
    "ndcg",
    "rank_of_target",
    "ranking_metrics",
    "temporal_split",
]
