"""Serving the analytics jobs' results: churn warnings, segments, basket rules, forecasts.

The jobs (:mod:`shoplm.app.analytics`) fit the models and write their results to the store;
this module only reads them, so a serving process needs no LightGBM, scikit-learn or
statsforecast and answers from one indexed lookup.

Example:
    >>> import pandas as pd
    >>> from shoplm.ingest.pseudonymize import Pseudonymizer
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> insights = Insights(store, Pseudonymizer(b"k"))
    >>> store.analytics.replace_user_scores("churn", pd.DataFrame(
    ...     {"user_id": [Pseudonymizer(b"k").user("U1")], "score": [0.8], "reasons": [["no purchase for 120 days"]]}))
    1
    >>> warning = insights.churn("U1")
    >>> warning["at_risk"], warning["reasons"]
    (True, ['no purchase for 120 days'])
"""

from __future__ import annotations

import time
from typing import Any

from shoplm.errors import NotFoundError
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.store import Store

#: A churn probability at or above this is a warning (the dashboard's list and ``at_risk``).
CHURN_WARNING_AT = 0.5

#: The report each job writes, and the command that writes it (named in "not yet" errors).
REPORT_COMMANDS = {
    "churn": "shoplm churn",
    "segments": "shoplm segments",
    "basket": "shoplm segments",
    "forecast": "shoplm reorder",
    "pricing": "shoplm pricing",
}


def iso_time(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


class Insights:
    """Read-only access to the analytics results of one shop.

    Args:
        store: the shop's store.
        pseudonymizer: turns the shop's user ids into the stored ones.
    """

    def __init__(self, store: Store, pseudonymizer: Pseudonymizer) -> None:
        self.store = store
        self.pseudonymizer = pseudonymizer

    def report(self, name: str) -> dict[str, Any]:
        """The body of report ``name`` with its ``computed_at``.

        Raises:
            NotFoundError: no job has written it yet (the message names the command that does).
        """
        found = self.store.analytics.report(name)
        if found is None:
            command = REPORT_COMMANDS.get(name, "the analytics job")
            raise NotFoundError(f"no {name} results yet: run `{command}`", code=f"no_{name}_results")
        return {**found["body"], "computed_at": iso_time(found["computed_ms"])}

    def pricing(self, category: str, *, change: float | None = None) -> dict[str, Any]:
        """The category's elasticity, verdict and, given ``change`` (0.1 is +10%), the what-if answer.

        Raises:
            NotFoundError: no pricing job has run, or the category has no elasticity.
            InputError: a change at or below -100%.
        """
        from shoplm.pricing.elasticity import what_if

        report = self.report("pricing")
        rows = {row["category"]: row for row in report["categories"]}
        if category not in rows:
            known = ", ".join(sorted(rows)[:10])
            raise NotFoundError(f"no elasticity for category {category!r} (known: {known})", code="unknown_category")
        answer = what_if(rows[category], 0.0 if change is None else change, level=report["level"])
        answer["computed_at"] = report["computed_at"]
        answer["evidence"] = {k: rows[category][k] for k in ("n", "items", "within_sd", "share_moved", "se")}
        return answer

    def forecast(self, item_id: str) -> dict[str, Any]:
        """The item's recent weekly demand, its forecast with 80% / 95% intervals, and its reorder advice.

        Raises:
            NotFoundError: no forecast job has run, or the item is not among those forecast.
        """
        report = self.report("forecast")
        found = next((s for s in report["series"] if s["item_id"] == item_id), None)
        if found is None:
            raise NotFoundError(
                f"item {item_id!r} was not forecast: the job forecasts the top "
                f"{len(report['series'])} items by revenue",
                code="item_not_forecast",
            )
        advice = next((r for r in report["reorder"] if r["item_id"] == item_id), None)
        return {**found, "horizon": report["horizon"], "reorder": advice, "computed_at": report["computed_at"]}

    def reorder(self, *, limit: int = 50) -> dict[str, Any]:
        """What to order now, biggest orders first, with the policy behind it."""
        report = self.report("forecast")
        return {"policy": report["policy"], "items": report["reorder"][:limit], "computed_at": report["computed_at"]}

    def fraud_alerts(self, *, limit: int = 50, since_ms: int = 0) -> dict[str, Any]:
        """The newest fraud alerts (each with the rules and features behind it) and how many there are."""
        alerts = self.store.alerts.recent("fraud", limit=limit, since_ms=since_ms)
        for alert in alerts:
            alert["created_at"] = iso_time(alert.pop("created_ms"))
            delivered = alert.pop("delivered_ms")
            alert["delivered_at"] = iso_time(delivered) if delivered is not None else None
            alert.pop("last_error", None)
        return {"total": self.store.alerts.count("fraud"), "alerts": alerts}

    def churn(self, user_id: str, *, pseudonymous: bool = False) -> dict[str, Any]:
        """The user's churn warning: probability, whether it is a warning, and why.

        Args:
            user_id: the shop's user id (or, with ``pseudonymous``, the stored one).

        Raises:
            NotFoundError: the churn job has not run, or the user was not scored (no purchase
                before the job's cutoff).
        """
        stored = user_id if pseudonymous else self.pseudonymizer.user(user_id)
        found = self.store.analytics.user_score("churn", stored)
        if found is None:
            if self.store.analytics.count_user_scores("churn") == 0:
                raise NotFoundError("no churn scores yet: run `shoplm churn`", code="no_churn_results")
            raise NotFoundError(
                f"user {user_id!r} has no churn score: only customers with a purchase are scored",
                code="user_not_scored",
            )
        return _warning(found, user_id=user_id)

    def at_risk(self, *, limit: int = 20) -> dict[str, Any]:
        """The customers most likely to churn, highest probability first, and how many are warned."""
        rows = self.store.analytics.top_user_scores("churn", limit=limit, min_score=CHURN_WARNING_AT)
        return {
            "threshold": CHURN_WARNING_AT,
            "warned": self.store.analytics.count_user_scores("churn", min_score=CHURN_WARNING_AT),
            "scored": self.store.analytics.count_user_scores("churn"),
            "users": [_warning(row, user_id=None) for row in rows],
        }


def _warning(row: dict[str, Any], *, user_id: str | None) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "pseudonymous_id": row["user_id"],
        "probability": round(row["score"], 4),
        "at_risk": row["score"] >= CHURN_WARNING_AT,
        "reasons": row["reasons"],
        "details": row["details"],
        "computed_at": iso_time(row["computed_ms"]),
    }
