"""Demand: weekly forecasts per SKU and category, intervals, cold start and reorder advice. Pure logic, no SQL.

The domain API:

- :func:`weekly_demand` (transactions frame -> :class:`DemandPanel`, returns handled explicitly);
- :func:`forecast` (panel, horizon, levels -> mean and interval bounds per SKU and category week);
- :func:`reorder_advice` (forecast -> safety stock, reorder point, order-up-to, newsvendor);
- the estimators it keeps: :class:`GlobalDemandModel`, :class:`EnsembleSelector`,
  :class:`ColdStartForecaster`.

Categories derived from descriptions live in :mod:`shoplm.lm.categories` (text clustering, which
the importer and the pricing domain use too).
"""

from shoplm.forecast.coldstart import ColdStartForecaster
from shoplm.forecast.ensemble import EnsembleSelector
from shoplm.forecast.models import GlobalDemandModel
from shoplm.forecast.panel import DemandPanel, check_horizon, demand_class, weekly_demand
from shoplm.forecast.pipeline import forecast
from shoplm.forecast.reorder import reorder_advice, simulate_order_up_to

__all__ = [
    "ColdStartForecaster",
    "DemandPanel",
    "EnsembleSelector",
    "GlobalDemandModel",
    "check_horizon",
    "demand_class",
    "forecast",
    "reorder_advice",
    "simulate_order_up_to",
    "weekly_demand",
]
