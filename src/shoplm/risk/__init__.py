"""Fraud and anomaly scoring of orders: features, readable rules, a PyOD ensemble, the benchmark. Pure logic, no SQL.

The application floor builds the feature frame from the store's tables with
:func:`build_order_features`, fits a :class:`FraudScorer` on it and stores
:meth:`FraudScorer.alerts` (JSON-ready dicts with the rules and features behind each score).
"""

from shoplm.risk.features import FEATURE_NAMES, FEATURES, FeatureSpec, build_order_features
from shoplm.risk.rules import RULE_NAMES, FiredRule, RuleSettings
from shoplm.risk.scorer import DETECTORS, FraudScorer

__all__ = [
    "DETECTORS",
    "FEATURES",
    "FEATURE_NAMES",
    "RULE_NAMES",
    "FeatureSpec",
    "FiredRule",
    "FraudScorer",
    "RuleSettings",
    "build_order_features",
]
