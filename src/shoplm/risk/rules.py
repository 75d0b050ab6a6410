"""Readable fraud rules: each is a name and a sentence with the numbers that made it fire.

Rules read the feature frame of :func:`shoplm.risk.features.build_order_features`; the one
threshold learned from data (what a high order total is) comes from the training orders and
is passed in, so a rule says exactly which line it crossed.

Example:
    >>> import pandas as pd
    >>> row = pd.Series({"account_age_hours": 5.0, "prior_orders": 0.0, "total_amount": 3480.0,
    ...                  "country": "US", "account_country": "CN", "country_mismatch": 1.0,
    ...                  "new_address": 0.0, "prior_refunds": 0.0, "prior_refund_share": 0.0,
    ...                  "orders_24h": 0.0, "bot_events_24h": 0.0})
    >>> fired = fired_rules(row, RuleSettings(high_value_quantile=0.99), high_value_amount=1920.0, currency="CNY")
    >>> [rule.name for rule in fired]
    ['new_account_high_value', 'country_mismatch']
    >>> fired[0].text
    'first order 5 h after the account was created, total 3,480 CNY > p99 1,920 CNY'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["RULE_NAMES", "FiredRule", "RuleSettings", "fired_rules", "rule_matrix"]

RULE_NAMES: tuple[str, ...] = (
    "velocity",
    "new_account_high_value",
    "country_mismatch",
    "new_address",
    "refund_abuse",
    "bot_burst",
)


@dataclass(frozen=True)
class FiredRule:
    """A rule that fired on an order: its name and why, in words with the numbers."""

    name: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class RuleSettings:
    """The rules' thresholds (a shop can tighten or loosen them).

    Attributes:
        velocity_orders: this many other orders by the user in the 24 h before is velocity.
        new_account_hours: an account younger than this at its first order is new.
        high_value_quantile: the quantile of training order totals above which an order is high-value.
        refund_share: this share or more of earlier orders refunded/returned/cancelled is abuse...
        refund_min_orders: ...once the user has at least this many of them.
        bot_events: this many bot-flagged events by the user in the 24 h before fire the bot rule.
    """

    velocity_orders: int = 3
    new_account_hours: float = 24.0
    high_value_quantile: float = 0.95
    refund_share: float = 0.5
    refund_min_orders: int = 3
    bot_events: int = 1


def _hours(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.0f} {currency}".strip()


def _quantile_name(quantile: float) -> str:
    return f"p{100 * quantile:g}"


def rule_matrix(features: pd.DataFrame, settings: RuleSettings, *, high_value_amount: float) -> np.ndarray:
    """Which rule fires on which order: a boolean (orders x :data:`RULE_NAMES`) matrix.

    Args:
        features: the frame of :func:`~shoplm.risk.features.build_order_features`.
        settings: the thresholds.
        high_value_amount: order totals above this are high-value (learned on training orders).

    Returns:
        Boolean array, one column per rule in :data:`RULE_NAMES` order.
    """

    def column(name: str) -> np.ndarray:
        return np.nan_to_num(features[name].to_numpy(dtype=np.float64), nan=0.0)

    age = features["account_age_hours"].to_numpy(dtype=np.float64)
    prior = column("prior_orders")
    refunds = column("prior_refunds")
    fired = {
        "velocity": column("orders_24h") >= settings.velocity_orders,
        "new_account_high_value": (np.nan_to_num(age, nan=math.inf) < settings.new_account_hours)
        & (prior == 0)
        & (column("total_amount") > high_value_amount),
        "country_mismatch": column("country_mismatch") > 0,
        "new_address": column("new_address") > 0,
        "refund_abuse": (refunds >= settings.refund_min_orders)
        & (column("prior_refund_share") >= settings.refund_share),
        "bot_burst": column("bot_events_24h") >= settings.bot_events,
    }
    return np.column_stack([fired[name] for name in RULE_NAMES])


def fired_rules(
    row: pd.Series, settings: RuleSettings, *, high_value_amount: float, currency: str = ""
) -> list[FiredRule]:
    """The rules one order (a row of the feature frame) fires, each with its sentence.

    Args:
        row: one row of the feature frame (also needs ``country`` and ``account_country``).
        settings: the thresholds.
        high_value_amount: the learned high-value line (see :func:`rule_matrix`).
        currency: shown after amounts.

    Returns:
        The fired rules in :data:`RULE_NAMES` order.
    """
    flags = rule_matrix(pd.DataFrame([row]), settings, high_value_amount=high_value_amount)[0]
    out = []
    for name, fired in zip(RULE_NAMES, flags, strict=True):
        if not fired:
            continue
        if name == "velocity":
            text = (
                f"{int(row['orders_24h'])} other orders by this user in the 24 h before "
                f"(limit {settings.velocity_orders})"
            )
        elif name == "new_account_high_value":
            text = (
                f"first order {_hours(float(row['account_age_hours']))} after the account was created, total "
                f"{_money(float(row['total_amount']), currency)} > {_quantile_name(settings.high_value_quantile)} "
                f"{_money(high_value_amount, currency)}"
            )
        elif name == "country_mismatch":
            text = f"ships to {row['country']}, the account's country is {row['account_country']}"
        elif name == "new_address":
            count = int(row["prior_orders"])
            text = f"ships to an address none of the user's {count} earlier order{'s' if count != 1 else ''} used"
        elif name == "refund_abuse":
            text = (
                f"{int(row['prior_refunds'])} of the user's {int(row['prior_orders'])} earlier orders were refunded, "
                f"returned or cancelled ({100 * float(row['prior_refund_share']):.0f}% "
                f"≥ {100 * settings.refund_share:.0f}%)"
            )
        else:
            text = (
                f"{int(row['bot_events_24h'])} of this user's events in the 24 h before were flagged "
                "as bot-like bursts at ingest"
            )
        out.append(FiredRule(name, text))
    return out
