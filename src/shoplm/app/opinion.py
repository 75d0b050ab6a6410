"""The opinion job: daily sentiment per item, category and brand, complaint spikes as alerts.

:func:`run_opinion` reads the stored reviews with their sentiment (the ``review_sentiment``
table where the sentiment model scored a review, a rating of 1-2 otherwise), counts reviews and
negative reviews per day, finds spikes (:func:`shoplm.insight.opinion.detect_spikes`: beta-binomial
and gamma-Poisson tests, Benjamini-Hochberg over the run), names the complaint topics of the
negative reviews (e5 vectors, HDBSCAN, c-TF-IDF) and stores everything as the ``opinion``
report. Each spike is an alert through :class:`~shoplm.app.alerts.AlertCenter` (stored once,
sent to the webhook signed, retried), like fraud alerts.

:func:`opinion_alerts` and :func:`daily_series` only read what the job stored (no model), for
the routes, the dashboard and the CLI.

Example:
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> run_opinion(store, Settings(data_dir="/tmp/shoplm-doc"))
    Traceback (most recent call last):
    ...
    shoplm.errors.InputError: opinion: the store has no reviews yet (`shoplm ingest reviews FILE`)
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from shoplm.config import Settings
from shoplm.errors import InputError, NotFoundError, ShoplmError
from shoplm.insight.opinion import (
    DAY_MS,
    LEVELS,
    OpinionAlert,
    OpinionConfig,
    daily_sentiment,
    day_string,
    detect_spikes,
)
from shoplm.store import Store

log = logging.getLogger(__name__)

REPORT = "opinion"
ALERT_KIND = "opinion"
COMMAND = "shoplm insight alerts --run"


def config_from(settings: Settings) -> OpinionConfig:
    """The detector's settings from ``Settings.opinion``."""
    o = settings.opinion
    return OpinionConfig(baseline_days=o.baseline_days, min_negative=o.min_negative, fdr=o.fdr)


def read_review_signal(store: Store) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every review with its key per level and whether it is negative, and where that came from.

    A review the sentiment model scored is negative when its polarity is ``negative``; one it
    did not score (no model run yet, or skipped: empty, another language) falls back to its
    rating (1-2 is negative); a review with neither is left out.

    Returns:
        The frame (``review_id, ts_ms, negative, text, item, category, brand``) and the count of
        reviews per signal: ``sentiment_model``, ``rating``, ``unscored``.
    """
    reviews = store.frame("reviews", ["review_id", "item_id", "ts_ms", "rating", "text"])
    if reviews.empty:
        raise InputError("opinion: the store has no reviews yet (`shoplm ingest reviews FILE`)")
    polarity = pd.Series(dtype=object)
    try:
        scored = store.frame("review_sentiment", ["review_id", "polarity", "skipped"])
        scored = scored[scored["polarity"].notna() & (scored["skipped"].fillna("") == "")]
        polarity = pd.Series(scored["polarity"].to_numpy(), index=scored["review_id"].to_numpy())
    except (ShoplmError, KeyError) as exc:  # a store without the sentiment table: ratings only
        log.info("no stored review sentiment (%s): using ratings", exc)
    model = reviews["review_id"].map(polarity)
    from_model = model.notna().to_numpy()
    rating = pd.to_numeric(reviews["rating"], errors="coerce")
    from_rating = ~from_model & rating.notna().to_numpy()
    negative = np.where(from_model, model.to_numpy() == "negative", (rating <= 2).to_numpy())
    catalog = store.items.catalog(["item_id", "category", "brand"]).set_index("item_id")
    frame = pd.DataFrame(
        {
            "review_id": reviews["review_id"].astype(str),
            "ts_ms": reviews["ts_ms"].astype(np.int64),
            "negative": negative.astype(bool),
            "text": reviews["text"].fillna("").astype(str),
            "item": reviews["item_id"].astype(str),
            "category": reviews["item_id"].map(catalog["category"]).fillna("").astype(str),
            "brand": reviews["item_id"].map(catalog["brand"]).fillna("").astype(str),
        }
    )[from_model | from_rating]
    counts = {
        "sentiment_model": int(from_model.sum()),
        "rating": int(from_rating.sum()),
        "unscored": int((~from_model & ~from_rating).sum()),
    }
    return frame.reset_index(drop=True), counts


def _topics(frame: pd.DataFrame, settings: Settings) -> tuple[Any, list[str], str]:
    """Complaint topics of the newest negative reviews; (topics or None, their review ids, note)."""
    from shoplm.insight.topics import complaint_topics
    from shoplm.lm.factory import load_encoder

    negative = frame[frame["negative"] & (frame["text"].str.strip() != "")]
    negative = negative.sort_values("ts_ms").tail(settings.opinion.max_topic_reviews)
    if len(negative) < 3:
        return None, [], "fewer than 3 negative reviews with text"
    try:
        vectors = load_encoder(settings).encode(negative["text"].tolist(), mode="passage")
    except ShoplmError as exc:
        return None, [], f"no encoder for topics: {exc}"
    return complaint_topics(negative["text"].tolist(), vectors), negative["review_id"].tolist(), ""


def _alert_record(alert: OpinionAlert) -> dict[str, Any]:
    what = {"item": "item", "category": "category", "brand": "brand"}[alert.level]
    when = alert.start if alert.start == alert.end else f"{alert.start}..{alert.end}"
    topics = alert.keywords or ", ".join(t["topic"] for t in alert.topics[:2])
    return {
        "alert_id": alert.alert_id,
        "kind": ALERT_KIND,
        "subject": f"{alert.level}:{alert.key}",
        "score": round(1.0 - float(alert.q_value or 0.0), 6),
        "title": (
            f"complaints about {what} {alert.key} spiked {when}: {alert.negative} negative of {alert.reviews} "
            f"reviews (before: {alert.baseline_share:.0%})" + (f"; about: {topics}" if topics else "")
        ),
        "body": alert.to_dict(),
    }


def run_opinion(
    store: Store,
    settings: Settings,
    *,
    since_ms: int | None = None,
    alert_center: Any = None,
    topics: bool = True,
) -> dict[str, Any]:
    """Compute daily sentiment and spikes; store the ``opinion`` report and raise the new alerts.

    Args:
        store: the shop's store.
        settings: the shop's settings (``opinion`` and ``alerts``).
        since_ms: raise alerts only for spikes whose last day is at or after this time (all are
            in the report); None: every spike.
        alert_center: where alerts go (tests pass their own); default the store's and webhook.
        topics: name complaint topics (loads the text encoder).

    Returns:
        ``{"reviews", "signal", "tests", "alerts", "new_alerts", "delivered", "delivery_failed", "seconds"}``.

    Raises:
        InputError: the store has no reviews.
    """
    from shoplm.app.alerts import AlertCenter
    from shoplm.insight.topics import distinctive_keywords, top_topics

    started = time.perf_counter()
    frame, signal = read_review_signal(store)
    if frame.empty:
        raise InputError("opinion: no review has a rating or a stored sentiment to tell negative ones by")
    config = config_from(settings)
    alerts = detect_spikes(frame, config=config)
    found, topic_ids, topic_note = _topics(frame, settings) if topics else (None, [], "not computed")
    if found is not None:
        position = {review_id: i for i, review_id in enumerate(topic_ids)}
        texts = frame.set_index("review_id").loc[topic_ids, "text"].tolist()
        for alert in alerts:
            members = [position[r] for r in alert.review_ids if r in position]
            alert.topics = top_topics(found, members)
            alert.keywords = distinctive_keywords(texts, members)
    daily = {level: daily_sentiment(frame, level) for level in LEVELS}
    shop_daily = daily_sentiment(frame.assign(item="shop"), "item")
    last_day = int(frame["ts_ms"].max() // DAY_MS)
    report = {
        "signal": signal,
        "signal_note": _signal_note(signal),
        "config": asdict(config),
        "first_day": day_string(int(frame["ts_ms"].min() // DAY_MS)),
        "last_day": day_string(last_day),
        "shop_daily": shop_daily.drop(columns="key").to_dict("records"),
        "daily": {
            level: {
                str(key): [
                    [str(d), int(n), int(neg)]
                    for d, n, neg in rows[["day", "reviews", "negative"]].itertuples(index=False)
                ]
                for key, rows in table.groupby("key", sort=True)
            }
            for level, table in daily.items()
        },
        "alerts": [a.to_dict() for a in alerts],
        "topics": found.to_list() if found is not None else [],
        "topics_note": topic_note,
        "seconds": 0.0,
    }
    since_day = None if since_ms is None else int(since_ms // DAY_MS)
    to_raise = [a for a in alerts if since_day is None or int(np.datetime64(a.end, "D").astype(int)) >= since_day]
    center = alert_center or AlertCenter(store, settings.alerts)
    new_ids, delivery = center.raise_alerts([_alert_record(a) for a in to_raise])
    report["seconds"] = round(time.perf_counter() - started, 2)
    store.analytics.save_report(REPORT, report)
    return {
        "reviews": len(frame),
        "signal": signal,
        "signal_note": report["signal_note"],
        "alerts": len(alerts),
        "new_alerts": len(new_ids),
        "delivered": len(delivery.delivered),
        "delivery_failed": len(delivery.failed),
        "topics": len(report["topics"]),
        "seconds": report["seconds"],
    }


def run_scheduled(store: Store, settings: Settings) -> dict[str, Any]:
    """The scheduler's run: alerts only for spikes in the newest reviews' last ``opinion.alert_days`` days."""
    newest = store.frame("reviews", ["ts_ms"], order_by=["ts_ms"])
    if newest.empty:
        raise InputError("no reviews yet")
    last = int(newest["ts_ms"].iat[-1])
    return run_opinion(store, settings, since_ms=last - settings.opinion.alert_days * DAY_MS)


def _signal_note(signal: dict[str, int]) -> str:
    parts = []
    if signal["sentiment_model"]:
        parts.append(f"{signal['sentiment_model']} reviews by the stored sentiment model")
    if signal["rating"]:
        parts.append(f"{signal['rating']} by their rating (1-2 is negative; no model score)")
    if signal["unscored"]:
        parts.append(f"{signal['unscored']} left out (no rating, no model score)")
    return "negative = " + "; ".join(parts)


# -- reading what the job stored ------------------------------------------------------------------
def opinion_report(store: Store) -> dict[str, Any]:
    """The stored ``opinion`` report with ``computed_ms``; NotFoundError before the job ran."""
    found = store.analytics.report(REPORT)
    if found is None:
        raise NotFoundError(f"no opinion results yet: run `{COMMAND}`", code="no_opinion_results")
    return {**found["body"], "computed_ms": found["computed_ms"]}


def opinion_alerts(store: Store, *, limit: int = 50, since: str | datetime.date | None = None) -> dict[str, Any]:
    """The stored opinion alerts, newest spike first, each with its reviews and topics.

    Args:
        limit: at most this many.
        since: only spikes whose last day is on or after this day (a date, or ``YYYY-MM-DD``).

    Raises:
        InputError: ``since`` is not a date.
    """
    from shoplm.insight.opinion import parse_day

    if isinstance(since, datetime.date):
        since_day: str | None = since.isoformat()  # any year: a date is compared as its ISO text
    else:
        since_day = None if since is None else day_string(parse_day(since))
    rows = store.alerts.recent(ALERT_KIND, limit=100_000)
    found = []
    for row in rows:
        body = row["body"]
        if since_day is not None and str(body.get("end", "")) < since_day:
            continue
        found.append(
            {
                "alert_id": row["alert_id"],
                "title": row["title"],
                "score": row["score"],
                "created_ms": row["created_ms"],
                "delivered": row["delivered_ms"] is not None,
                **{k: body.get(k) for k in ("level", "key", "start", "end", "days", "reviews", "negative")},
                **{k: body.get(k) for k in ("baseline_share", "p_value", "q_value", "review_ids", "topics")},
                "keywords": body.get("keywords", ""),
            }
        )
    found.sort(key=lambda a: (str(a["end"]), str(a["start"]), a["alert_id"]), reverse=True)
    return {"total": len(found), "alerts": found[:limit]}


def daily_series(store: Store, level: str, key: str | None = None) -> dict[str, Any]:
    """Reviews and negative reviews per day for one key (or the whole shop without ``key``).

    Raises:
        InputError: an unknown level.
        NotFoundError: the job has not run, or the key has no reviews.
    """
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    report = opinion_report(store)
    if key is None:
        rows = [[r["day"], r["reviews"], r["negative"]] for r in report["shop_daily"]]
    else:
        rows = report["daily"].get(level, {}).get(key)
        if rows is None:
            raise NotFoundError(f"no reviews of {level} {key!r} in the opinion results", code="unknown_key")
    alerts = [
        {k: a[k] for k in ("alert_id", "start", "end", "negative", "reviews")}
        for a in report["alerts"]
        if key is None or (a["level"] == level and a["key"] == key)
    ]
    return {
        "level": level if key is not None else "shop",
        "key": key,
        "signal_note": report["signal_note"],
        "days": [
            {"day": d, "reviews": int(n), "negative": int(neg), "negative_share": round(neg / n, 4) if n else 0.0}
            for d, n, neg in rows
        ],
        "alerts": alerts,
        "computed_ms": report["computed_ms"],
    }
