"""Customers over time: lifetime value (BG/NBD with Gamma-Gamma) and behavioural churn. Pure logic, no SQL.

What the application floor calls, with a transactions frame
(:func:`shoplm.ingest.transactions.read_retail_transactions` or the store's orders):

- lifetime value: :func:`rfm_summary` -> :class:`BetaGeoModel` and :class:`GammaGammaModel`
  -> :func:`customer_lifetime_value` (or :func:`lifetime_values`, all in one call);
- churn: :class:`ChurnModel` ``.fit(frame)``, then ``.warnings(frame, top=20)`` (the dashboard
  list) and ``.warning_for(frame, customer_id)`` (one user), each a :class:`ChurnWarning` with
  its probability and reasons.
"""

from shoplm.customers.bgnbd import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from shoplm.customers.churn import ChurnModel, ChurnWarning, default_cutoffs
from shoplm.customers.churn_features import churn_features, churn_labels
from shoplm.customers.summary import holdout_counts, read_cdnow, rfm_summary
from shoplm.customers.value import lifetime_values

__all__ = [
    "BetaGeoModel",
    "ChurnModel",
    "ChurnWarning",
    "GammaGammaModel",
    "churn_features",
    "churn_labels",
    "customer_lifetime_value",
    "default_cutoffs",
    "holdout_counts",
    "lifetime_values",
    "read_cdnow",
    "rfm_summary",
]
