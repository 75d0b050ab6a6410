"""Analytics jobs: read the store's orders, fit the domain models, store their results for serving.

Each job reads (orders, items, users, events), never changes what it read, and replaces its
own result whole (:mod:`shoplm.store.analytics`): churn scores per user, and the reports
``pricing``, ``segments``, ``basket``, ``forecast`` and ``churn``. The fitted models are kept
as a version under ``models_dir/analytics/<job>/`` (the estimator contract: no pickle), so a
result can be traced to the model that made it.

Example:
    >>> import tempfile
    >>> from shoplm.config import ForecastSettings, Settings
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp())
    >>> store = Store.open(settings.database_url)
    >>> read_transactions(store).frame.empty
    True
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from shoplm.config import ForecastSettings, Settings
from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.ingest.transactions import RetailFile, transactions_from_order_lines
from shoplm.store import Store


def read_transactions(store: Store) -> RetailFile:
    """Every kept order line of the store as the transactions frame (see :mod:`shoplm.ingest.transactions`)."""
    return transactions_from_order_lines(store.orders.all_lines())


def _require_orders(found: RetailFile, job: str) -> pd.DataFrame:
    if found.frame.empty:
        raise InputError(f"{job}: the store has no orders yet (ingest orders, or `shoplm import uci-retail FILE`)")
    return found.frame


def save_job_model(settings: Settings, job: str, model: Estimator, name: str) -> Path:
    """Keep a job's fitted model under ``models_dir/analytics/<job>/<name>`` (replaced atomically)."""
    return model.save(settings.models_dir / "analytics" / job / name)


def item_categories(store: Store) -> pd.Series:
    """Item id -> category from the catalog (items without one are left out)."""
    catalog = store.items.catalog(["item_id", "category"])
    catalog = catalog[catalog["category"].fillna("") != ""]
    return pd.Series(catalog["category"].to_numpy(), index=catalog["item_id"].to_numpy())


# -- price sensitivity ----------------------------------------------------------------------
def run_pricing(store: Store, settings: Settings) -> dict[str, Any]:
    """Fit the elasticity per category on the store's orders; store the ``pricing`` report.

    Returns:
        The report: one row per category (elasticity, interval, verdict, baseline) and counts.
    """
    from shoplm.pricing.elasticity import ElasticityModel, weekly_price_panel

    started = time.perf_counter()
    found = read_transactions(store)
    frame = _require_orders(found, "pricing")
    categories = item_categories(store)
    if categories.empty:
        raise InputError("pricing: no item has a category (elasticities are per category)")
    model = ElasticityModel().fit(weekly_price_panel(frame, categories))
    save_job_model(settings, "pricing", model, "elasticity")
    table = model.table()
    report = {
        "level": model.level,
        "currency": found.currency,
        "categories": json.loads(table.to_json(orient="records")),
        "verdicts": {v: int((table["verdict"] == v).sum()) for v in sorted(table["verdict"].unique())},
        "dropped_lines": found.dropped,
        "seconds": round(time.perf_counter() - started, 2),
    }
    store.analytics.save_report("pricing", report)
    return report


# -- churn ------------------------------------------------------------------------------------
def _churn_chunk(task: dict[str, Any]) -> list[Any]:
    """Warnings of one group of customers (a Ray task, or a step of the local loop: the same function)."""
    return task["model"].warnings(task["frame"], customer_ids=task["customers"])


def run_churn(
    store: Store,
    settings: Settings,
    *,
    horizon_days: int = 90,
    users_per_task: int = 20_000,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Fit the churn model on the store's orders; store every customer's score with reasons.

    The model learns from past cutoffs whose ``horizon_days`` window is complete, then scores
    every customer as of the day after the newest order. Guests (no user id) are not scored.
    Scoring runs in groups of ``users_per_task`` customers, each one task: here one after
    another, or on Ray with ``ray_address`` (each task sees the whole history, since part of
    the features is fitted on every customer).

    Returns:
        The ``churn`` report: cutoff, customers scored and warned, a histogram of probabilities,
        and how the model was fitted (or which documented fallback it used).
    """
    from shoplm.app.insights import CHURN_WARNING_AT
    from shoplm.customers.churn import ChurnModel

    started = time.perf_counter()
    frame = _require_orders(read_transactions(store), "churn")
    customers = frame[frame["customer_id"] != ""]
    if customers.empty:
        raise InputError("churn: every order is a guest checkout; churn is per customer")
    model = ChurnModel(horizon_days=horizon_days, seed=settings.seed).fit(customers)
    save_job_model(settings, "churn", model, "model")
    from shoplm.fanout import map_chunks

    ids = sorted(customers["customer_id"].unique())
    tasks = [
        {"model": model, "frame": customers, "customers": ids[start : start + users_per_task]}
        for start in range(0, len(ids), max(users_per_task, 1))
    ]
    warnings = [w for part in map_chunks(_churn_chunk, tasks, ray_address=ray_address) for w in part]
    warnings.sort(key=lambda w: (-w.probability, w.customer_id))
    scores = pd.DataFrame(
        {
            "user_id": [w.customer_id for w in warnings],
            "score": [w.probability for w in warnings],
            "reasons": [w.reasons for w in warnings],
            "details": [{"reason_codes": w.reason_codes, "cutoff": w.cutoff} for w in warnings],
        }
    )
    store.analytics.replace_user_scores("churn", scores)
    edges = [i / 10 for i in range(11)]
    counts = pd.cut(scores["score"], edges, include_lowest=True).value_counts(sort=False).tolist()
    report = {
        "horizon_days": horizon_days,
        "cutoff": warnings[0].cutoff if warnings else None,
        "scored": len(scores),
        "warned": int((scores["score"] >= CHURN_WARNING_AT).sum()),
        "threshold": CHURN_WARNING_AT,
        "histogram": [
            {"bin": f"{lo:.0%}–{hi:.0%}", "count": int(n)}
            for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
        ],
        "fallback": getattr(model, "fallback_", None),
        "tasks": len(tasks),
        "ran_on": "ray" if ray_address else "local",
        "seconds": round(time.perf_counter() - started, 2),
    }
    store.analytics.save_report("churn", report)
    return report


# -- segments and basket rules ------------------------------------------------------------------
def run_segments(
    store: Store,
    settings: Settings,
    *,
    method: str = "rfm",
    n_segments: int | None = None,
    min_support: float = 0.01,
    top_rules: int = 30,
) -> dict[str, Any]:
    """Segment the store's customers and mine its basket rules; store the ``segments`` and ``basket`` reports.

    Args:
        method: ``rfm`` (named RFM segments) or ``kmeans`` (profile clusters).
        n_segments: k-means: how many (None: by silhouette).
        min_support: the basket rules' minimum support (share of orders holding an itemset).
        top_rules: rules kept in the report (highest lift first).

    Returns:
        ``{"segments": <segments report>, "basket": <basket report>}``.
    """
    from shoplm.segments.api import basket_rules_summary, segment_customers

    started = time.perf_counter()
    frame = _require_orders(read_transactions(store), "segments")
    customers = frame[frame["customer_id"] != ""]
    if customers.empty:
        raise InputError("segments: every order is a guest checkout; segments are of customers")
    categories = item_categories(store)
    result = segment_customers(
        customers, method=method, n_segments=n_segments, item_category=categories.to_dict() or None, seed=settings.seed
    )
    save_job_model(settings, "segments", result.model, method)
    segments = {**result.to_dict(), "seconds": round(time.perf_counter() - started, 2)}
    store.analytics.save_report("segments", segments)

    started = time.perf_counter()
    basket = basket_rules_summary(frame, min_support=min_support, top=max(top_rules, 1))
    basket["seconds"] = round(time.perf_counter() - started, 2)
    store.analytics.save_report("basket", basket)
    return {"segments": segments, "basket": basket}


# -- fraud ------------------------------------------------------------------------------------
def run_fraud(store: Store, settings: Settings, *, since_ms: int = 0, alert_center: Any = None) -> dict[str, Any]:
    """Score every order for fraud; raise an alert (stored once, sent to the webhook) for each flagged one.

    The scorer learns what usual orders look like from all of them (no labels), then flags the
    orders scoring above its alert line (the riskiest ``alert_rate`` share and any order a strong
    rule fires on). Orders created before ``since_ms`` are scored but raise no new alert.

    Returns:
        ``{"orders", "flagged", "new_alerts", "delivered", "delivery_failed"}``.
    """
    from shoplm.app.alerts import AlertCenter
    from shoplm.risk import FraudScorer, build_order_features

    started = time.perf_counter()
    orders = store.frame("orders")
    if orders.empty:
        raise InputError("fraud: the store has no orders yet")
    currency = str(orders["currency"].mode().iat[0]) if orders["currency"].notna().any() else ""
    features = build_order_features(
        orders,
        store.frame("order_lines"),
        users=store.frame("users"),
        events=store.frame("events", ["user_id", "ts_ms", "session_id", "event_type", "suspected_bot"]),
        items=store.frame("items", ["item_id", "price"]),
    )
    scorer = FraudScorer(currency=currency, random_state=settings.seed).fit(features)
    save_job_model(settings, "fraud", scorer, "scorer")
    flagged = scorer.alerts(features)
    alerts = [
        {
            "alert_id": f"fraud:{found['order_id']}",
            "kind": "fraud",
            "subject": str(found["order_id"]),
            "score": float(found["score"]),
            "title": f"order {found['order_id']} looks fraudulent",
            "body": {k: found[k] for k in ("user_id", "rules", "features", "detectors") if k in found},
        }
        for found in flagged
        if int(features.at[found["order_id"], "created_ms"]) >= since_ms
    ]
    center = alert_center or AlertCenter(store, settings.alerts)
    new_ids, delivery = center.raise_alerts(alerts)
    return {
        "orders": len(features),
        "flagged": len(flagged),
        "new_alerts": len(new_ids),
        "delivered": len(delivery.delivered),
        "delivery_failed": len(delivery.failed),
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- demand forecasts and reorder advice --------------------------------------------------------
def _forecast_chunk(task: dict[str, Any]) -> pd.DataFrame:
    """Forecast one group of categories (a Ray task, or a step of the local loop: the same function)."""
    from shoplm.forecast import forecast

    return forecast(task["panel"], task["horizon"], skus=task["skus"], categories=task["categories"])


def _category_groups(categories: dict[str, str], skus: list[str], n_groups: int) -> list[list[str]]:
    """SKUs split into at most ``n_groups`` groups of whole categories, balanced by SKU count.

    Whole categories keep each category's total reconciled with its own SKUs inside one task.
    """
    by_category: dict[str, list[str]] = {}
    for sku in skus:
        by_category.setdefault(categories.get(sku, "all"), []).append(sku)
    groups: list[list[str]] = [[] for _ in range(min(n_groups, len(by_category)))]
    for members in sorted(by_category.values(), key=len, reverse=True):
        min(groups, key=len).extend(members)
    return [g for g in groups if g]


def reorder_list(
    sku_forecast: pd.DataFrame,
    config: ForecastSettings,
    *,
    price: pd.Series,
    titles: pd.Series,
    stock: pd.Series | None = None,
) -> list[dict[str, Any]]:
    """What to order now, biggest orders first, each with its reason, under the ``forecast`` settings.

    The data has no purchase costs: the unit cost is the price less ``config.margin`` (what a
    stock-out loses), and holding costs ``config.holding_cost_per_year`` of the price a year.

    Args:
        sku_forecast: the SKU rows of :func:`shoplm.forecast.forecast`.
        config: lead time, review period, service level and costs.
        price, titles, stock: per item id; a missing stock count is taken as 0.

    Returns:
        One dict per SKU with something to order (see ``serve.schemas.ReorderAdvice``).
    """
    from shoplm.forecast.reorder import reorder_advice

    stock = pd.Series(dtype=float) if stock is None else stock
    prices = price.to_dict()
    advice = reorder_advice(
        sku_forecast,
        lead_time=config.lead_time_weeks,
        review=config.review_weeks,
        service_level=config.service_level,
        on_hand=stock.dropna().astype(float).to_dict(),
        price=prices,
        unit_cost={k: v * (1 - config.margin) for k, v in prices.items()},
        holding_rate=config.holding_cost_per_year / 52 / (1 - config.margin),  # per week, of the unit cost
    )
    rows = []
    for row in advice.sort_values("order", ascending=False).itertuples():
        if row.order <= 0:
            continue
        on_hand = stock.get(row.unique_id)
        known = on_hand is not None and pd.notna(on_hand)
        rows.append(
            {
                "item_id": row.unique_id,
                "title": str(titles.get(row.unique_id, "")),
                "order_quantity": int(row.order),
                "on_hand": int(on_hand) if known else None,
                "demand_mean": round(float(row.demand_mean), 1),
                "reorder_point": round(float(row.reorder_point), 1),
                "order_up_to": round(float(row.order_up_to), 1),
                "safety_stock": round(float(row.safety_stock), 1),
                "newsvendor": None if pd.isna(row.newsvendor) else round(float(row.newsvendor), 1),
                "reason": (
                    f"{'stock ' + str(int(on_hand)) if known else 'no stock count (taken as 0)'} is below "
                    f"{row.order_up_to:.0f}: forecast {row.demand_mean:.0f} over the next "
                    f"{config.lead_time_weeks + config.review_weeks} weeks plus safety stock {row.safety_stock:.0f} "
                    f"for {config.service_level:.0%} service"
                ),
            }
        )
    return rows


def run_forecast(store: Store, settings: Settings, *, ray_address: str | None = None) -> dict[str, Any]:
    """Forecast weekly demand of the top SKUs with intervals and advise what to order now.

    The SKUs are forecast in groups of whole categories (``forecast.chunks``), each group one
    task: here one after another, or on Ray with ``ray_address``; the same function either way,
    so the results do not depend on where they ran.

    Reorder advice uses the stock on hand from the catalog (``items.stock``; unknown counts as 0)
    and the documented defaults of :class:`~shoplm.config.ForecastSettings`: lead time, review
    period, service level, a holding cost per year as a share of the price, and the margin a
    stock-out loses (the unit cost is the price less the margin).

    Returns:
        The ``forecast`` report: per SKU its recent history, forecast and intervals; the reorder list.
    """
    from shoplm.fanout import map_chunks
    from shoplm.forecast import weekly_demand

    config = settings.forecast
    started = time.perf_counter()
    frame = _require_orders(read_transactions(store), "forecast")
    panel = weekly_demand(frame)
    horizon = max(config.horizon_weeks, config.lead_time_weeks + config.review_weeks)
    top = panel.items.sort_values("revenue", ascending=False, kind="stable")["item_id"].head(config.skus).tolist()
    categories = {k: v for k, v in item_categories(store).to_dict().items() if k in set(top)}
    tasks = [
        {"panel": panel, "horizon": horizon, "skus": group, "categories": {s: categories.get(s, "all") for s in group}}
        for group in _category_groups(categories, top, config.chunks)
    ]
    predicted = pd.concat(map_chunks(_forecast_chunk, tasks, ray_address=ray_address), ignore_index=True)
    skus = predicted[predicted["kind"] == "sku"]
    catalog = store.items.catalog(["item_id", "title", "price", "stock"]).set_index("item_id")
    reorder = reorder_list(
        skus,
        config,
        price=panel.items.set_index("item_id")["price"],
        titles=catalog["title"],
        stock=catalog["stock"],
    )
    series = []
    history = panel.demand.pivot_table(index="ds", columns="unique_id", values="y", aggfunc="sum")
    for sku in top:
        rows = skus[skus["unique_id"] == sku].sort_values("ds")
        past = history[sku].dropna().iloc[-26:] if sku in history else pd.Series(dtype=float)
        series.append(
            {
                "item_id": sku,
                "title": str(catalog["title"].get(sku, "")),
                "class": str(rows["series_class"].iat[0]) if len(rows) else "",
                "history": [{"x": str(ds.date()), "y": float(y)} for ds, y in past.items()],
                "forecast": [
                    {
                        "x": str(pd.Timestamp(r.ds).date()),
                        "mean": round(max(float(r.mean), 0.0), 2),
                        **{
                            f"{side}{level}": round(max(float(getattr(r, f"{side}_{level}")), 0.0), 2)
                            for side in ("lo", "hi")
                            for level in (80, 95)
                        },
                    }
                    for r in rows.rename(columns=lambda c: c.replace("-", "_")).itertuples()
                ],
            }
        )
    report = {
        "horizon": horizon,
        "levels": [80, 95],
        "policy": config.model_dump(),
        "panel": {
            "weeks": len(panel.weeks),
            "skus": len(panel.items),
            "clipped_weeks": panel.clipped_weeks,
            "returned_units": panel.returned_units,
        },
        "tasks": len(tasks),
        "ran_on": "ray" if ray_address else "local",
        "series": series,
        "reorder": reorder,
        "seconds": round(time.perf_counter() - started, 2),
    }
    store.analytics.save_report("forecast", report)
    return report
