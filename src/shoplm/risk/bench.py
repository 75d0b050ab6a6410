"""``shoplm bench fraud``: the fraud scorer on a demo store's injected fraud, beside single detectors.

Protocol (the same for any demo store, whatever its seed or size):

- Orders are sorted by time. The earlier ``validation_share`` (40%) is the *history*: the
  scorer is fitted on it (unsupervised) and its settings (mean or max of the detectors, the
  rules' weight, one-sided features) are chosen there by average precision against the
  history's fraud labels. The later orders are the *reported* part: scored by the models fitted
  on the history, as new orders would be; their labels are used only to compute the figures.
- ``ground_truth.json`` (``fraud_orders``) is read only for labels, never as model input.
- Models: ``shoplm`` (the chosen ensemble with rules), ``shoplm_no_rules`` (the same ensemble
  without the rules' points), ``ecod_one_sided`` (ECOD alone on shoplm's one-sided features),
  ``ecod``, ``iforest``, ``copod`` (the single-detector baselines: each PyOD detector off the
  shelf on the same features, without the one-sided cut and without rules) and ``rules`` (rule
  points alone, ties broken at random).
- Figures: precision@k, recall at a 1% alert rate (alerts = 1% of reported orders, with the
  best possible recall at that many alerts beside it), average precision, how many alerts it
  takes to catch every fraud, and recall at 1% per fraud reason.
- Variants: the same on features built without sign-up times, without the users table, and
  without events, as a store that lacks them would give.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.risk.features import build_order_features
from shoplm.risk.scorer import DETECTORS, FraudScorer

__all__ = ["DemoFrames", "load_demo_store", "precision_at_k", "recall_at_rate", "run_fraud_benchmark"]

#: events that count toward a bot burst (the ingest's choice: a checkout writes many purchases at once)
BROWSE_EVENTS = ("view", "click", "search")
#: settings tried on the history: combine x one-sided x rule weight
COMBINES = ("mean", "max")
RULE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
ONE_SIDED = (True, False)
CHART_MAX_K = 100

BotFlagger = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _log(message: str) -> None:
    print(f"[fraud] {message}", file=sys.stderr, flush=True)


@dataclass
class DemoFrames:
    """A demo store's files as the frames :func:`~shoplm.risk.features.build_order_features` takes."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    items: pd.DataFrame
    currency: str


def _read(path: Path, reader: Callable[[Path], pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(
            "missing: a demo store directory needs this file (`python -m shoplm.demo DIR` writes one)", path=path
        )
    try:
        frame = reader(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable ({exc})", path=path) from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"lacks column(s) {missing}", path=path, field=missing[0])
    return frame


def _iso_ms(series: pd.Series, path: Path, column: str) -> pd.Series:
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(f"{series.iloc[row]!r} is not an ISO-8601 time", path=path, line=row + 2, field=column)
    return parsed.astype("int64") // 1_000_000


def load_demo_store(data_dir: Path, *, flag_bots: BotFlagger | None = None) -> DemoFrames:
    """Read a demo store directory (``orders.csv``, ``users.csv``, ``events.parquet``, ``items.csv``).

    Args:
        data_dir: what :func:`shoplm.demo.generator.generate_demo_store` wrote.
        flag_bots: ``(user_ids, ts_ms) -> bool array`` marking bot-like bursts among browsing
            events, as the ingest does (its ``flag_bursts``); without it no event is flagged.

    Returns:
        The frames, times in epoch milliseconds.

    Raises:
        InputError: a file is missing or unreadable, or lacks a column.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError("not a directory: give a demo store (`python -m shoplm.demo DIR` writes one)", path=data_dir)
    csv = lambda p: pd.read_csv(p, keep_default_na=False, dtype={"user_id": str, "order_id": str, "item_id": str})  # noqa: E731
    lines = _read(
        data_dir / "orders.csv",
        csv,
        ["order_id", "user_id", "status", "item_id", "quantity", "unit_price", "created_at"],
    )
    path = data_dir / "orders.csv"
    lines = lines.assign(created_ms=_iso_ms(lines["created_at"], path, "created_at"))
    if "updated_at" in lines:
        lines["updated_ms"] = _iso_ms(lines["updated_at"], path, "updated_at")
    orders = lines.drop_duplicates("order_id").reset_index(drop=True)
    users = _read(data_dir / "users.csv", csv, ["user_id"])
    if "created_at" in users:
        users = users.assign(created_ms=_iso_ms(users["created_at"], data_dir / "users.csv", "created_at"))
    events = _read(data_dir / "events.parquet", pd.read_parquet, ["user_id", "timestamp"])
    events = events.rename(columns={"timestamp": "ts_ms"})
    if flag_bots is not None and "suspected_bot" not in events:
        browsing = (
            events["event_type"].isin(BROWSE_EVENTS).to_numpy()
            if "event_type" in events
            else np.ones(len(events), bool)
        )
        flags = np.zeros(len(events), dtype=bool)
        flags[browsing] = flag_bots(
            events["user_id"].fillna("").astype(str).to_numpy()[browsing], events["ts_ms"].to_numpy()[browsing]
        )
        events["suspected_bot"] = flags
    items_path = data_dir / "items.csv"
    items = _read(items_path, csv, ["item_id"]) if items_path.is_file() else pd.DataFrame()
    currency = str(orders["currency"].iloc[0]) if "currency" in orders and len(orders) else ""
    return DemoFrames(orders=orders, lines=lines, users=users, events=events, items=items, currency=currency)


def fraud_labels(data_dir: Path, order_ids: pd.Index) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Which orders are injected fraud (and why), from ``ground_truth.json``: for scoring only."""
    path = Path(data_dir) / "ground_truth.json"
    if not path.is_file():
        raise InputError("missing: the benchmark needs the demo store's ground truth", path=path)
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
        reasons = {str(f["order_id"]): [str(r) for r in f.get("reasons", [])] for f in truth["fraud_orders"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"no readable 'fraud_orders' list ({exc})", path=path) from exc
    return order_ids.isin(list(reasons)), reasons


def precision_at_k(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of fraud among the ``k`` highest scores (stable order on ties).

    Example:
        >>> precision_at_k(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]), 2)
        0.5
    """
    top = np.argsort(-scores, kind="stable")[: max(1, min(k, len(scores)))]
    return float(np.mean(labels[top]))


def recall_at_rate(labels: np.ndarray, scores: np.ndarray, rate: float) -> tuple[float, int]:
    """Recall when the top ``rate`` share of orders alert; returns (recall, number of alerts).

    Example:
        >>> recall_at_rate(np.array([1, 0, 0, 1] + [0] * 96), np.arange(100.0)[::-1], 0.02)
        (0.5, 2)
    """
    alerts = max(1, round(rate * len(scores)))
    top = np.argsort(-scores, kind="stable")[:alerts]
    positives = int(np.sum(labels))
    return (float(np.sum(labels[top]) / positives) if positives else math.nan), alerts


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores)) if labels.any() else math.nan


def _alerts_for_full_recall(labels: np.ndarray, scores: np.ndarray) -> int:
    """How many alerts, riskiest first, it takes to catch every fraud (the number of fraud at best)."""
    ranked = labels[np.argsort(-scores, kind="stable")]
    return int(np.flatnonzero(ranked)[-1]) + 1 if ranked.any() else 0


def _figures(
    labels: np.ndarray, scores: np.ndarray, ks: tuple[int, ...], reasons: list[list[str]], rate: float
) -> dict[str, Any]:
    recall, alerts = recall_at_rate(labels, scores, rate)
    top = np.zeros(len(scores), dtype=bool)
    top[np.argsort(-scores, kind="stable")[:alerts]] = True
    by_reason: dict[str, float] = {}
    for reason in sorted({r for rs in reasons for r in rs}):
        has = np.array([reason in rs for rs in reasons])
        by_reason[reason] = round(float(np.mean(top[has])), 4)
    return {
        "precision_at_k": {str(k): round(precision_at_k(labels, scores, k), 4) for k in ks},
        "recall_at_1pct": round(recall, 4),
        "average_precision": round(_average_precision(labels, scores), 4),
        "alerts_for_full_recall": _alerts_for_full_recall(labels, scores),
        "recall_at_1pct_by_reason": by_reason,
        "curve": [round(precision_at_k(labels, scores, k), 4) for k in range(1, min(CHART_MAX_K, len(scores)) + 1)],
    }


def _select(history: pd.DataFrame, labels: np.ndarray, seed: int, currency: str) -> dict[str, Any]:
    """Choose combine, rule weight and one-sidedness on the history by average precision."""
    candidates = []
    for one_sided in ONE_SIDED:
        scorer = FraudScorer(one_sided=one_sided, random_state=seed, currency=currency).fit(history)
        z = np.column_stack(list(scorer.detector_scores(history).values()))
        points = scorer.rule_hits(history).sum(axis=1)
        for combine in COMBINES:
            combined = z.mean(axis=1) if combine == "mean" else z.max(axis=1)
            for weight in RULE_WEIGHTS:
                ap = _average_precision(labels, combined + weight * points)
                candidates.append({"combine": combine, "rule_weight": weight, "one_sided": one_sided, "ap": ap})
    scored = [c for c in candidates if not math.isnan(c["ap"])]
    if not scored:
        chosen = {"combine": "mean", "rule_weight": 1.0, "one_sided": True, "ap": math.nan}
        note = "no fraud in the history: default settings"
    else:
        chosen = max(scored, key=lambda c: c["ap"])  # first of equals: the earlier, simpler setting
        note = "best average precision on the history"
    return {
        "combine": chosen["combine"],
        "rule_weight": chosen["rule_weight"],
        "one_sided": chosen["one_sided"],
        "history_average_precision": None if math.isnan(chosen["ap"]) else round(chosen["ap"], 4),
        "note": note,
        "candidates": [{**c, "ap": None if math.isnan(c["ap"]) else round(c["ap"], 4)} for c in candidates],
    }


def _chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, figures in results["models"].items():
        curve = figures["curve"]
        # shoplm drawn thick and on top; the ablations dashed, the baselines plain.
        style = {"color": "black", "linewidth": 2.6, "zorder": 5} if name == "shoplm" else {"linewidth": 1.2}
        if name.startswith(("shoplm_", "ecod_")):
            style["linestyle"] = "--"
        ax.plot(range(1, len(curve) + 1), curve, label=name, **style)
    n_fraud = results["data"]["reported_fraud"]
    longest = max(len(f["curve"]) for f in results["models"].values())
    ks = np.arange(1, longest + 1)
    ax.plot(ks, np.minimum(1.0, n_fraud / ks), color="grey", linestyle="--", linewidth=0.8, label="best possible")
    alerts = results["data"]["alerts_at_1pct"]
    ax.axvline(alerts, color="grey", linestyle=":", linewidth=1)
    ax.text(alerts, 0.02, " 1% alert rate", color="grey", fontsize=8)
    ax.set_xlabel("k (alerts, riskiest first)")
    ax.set_ylabel("precision@k")
    ax.set_ylim(0, 1.05)
    data = results["data"]
    ax.set_title(f"Fraud alerts on {data['reported_orders']:,} later orders ({data['reported_fraud']} fraud)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


VARIANTS = {
    "no_signup_times": ("signup", "users without sign-up times: account age is the time since first seen"),
    "no_account_data": ("users", "no users table: no account country, account age since first seen"),
    "no_events": ("events", "no events: no sessions, no activity history, no bot flags"),
}


def _evaluate(
    split: tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, list[list[str]]],
    ks: tuple[int, ...],
    seed: int,
    currency: str,
    alert_rate: float,
    *,
    curves: bool = True,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], FraudScorer]:
    """Choose the settings on the history, fit every model on it, measure them on the reported part."""
    history, reported, y_history, y_reported, reported_reasons = split
    selection = _select(history, y_history, seed, currency)
    _log(
        f"chosen on the history: combine={selection['combine']} rule_weight={selection['rule_weight']} "
        f"one_sided={selection['one_sided']} (AP {selection['history_average_precision']})"
    )
    common = {"random_state": seed, "currency": currency, "alert_rate": alert_rate}
    models = {
        "shoplm": FraudScorer(
            combine=selection["combine"],
            rule_weight=selection["rule_weight"],
            one_sided=selection["one_sided"],
            **common,
        )
    }
    # Ablation: the same ensemble without the rules' points.
    models["shoplm_no_rules"] = FraudScorer(
        combine=selection["combine"], rule_weight=0.0, one_sided=selection["one_sided"], **common
    )
    # The best single detector on these stores, with the same one-sided features as shoplm.
    models["ecod_one_sided"] = FraudScorer(
        detectors="ecod", rule_weight=0.0, one_sided=selection["one_sided"], **common
    )
    # The baselines: each detector off the shelf on the same features (no one-sided cut, no rules).
    for name in DETECTORS:
        models[name] = FraudScorer(detectors=name, rule_weight=0.0, one_sided=False, **common)
    figures: dict[str, dict[str, Any]] = {}
    for name, scorer in models.items():
        figures[name] = _figures(y_reported, scorer.fit(history).score(reported), ks, reported_reasons, alert_rate)
    # Rules alone: points, ties broken at random (a fixed order would flatter or punish them by chance).
    points = models["shoplm"].rule_hits(reported).sum(axis=1).astype(np.float64)
    tie_break = np.random.default_rng(seed).random(len(points)) * 1e-3
    figures["rules"] = _figures(y_reported, points + tie_break, ks, reported_reasons, alert_rate)
    if not curves:
        for entry in figures.values():
            entry.pop("curve")
    return selection, figures, models["shoplm"]


def run_fraud_benchmark(
    data_dir: Path,
    out: Path | None = None,
    *,
    chart: Path | None = None,
    seed: int = 0,
    ks: tuple[int, ...] = (10, 25, 50),
    validation_share: float = 0.4,
    alert_rate: float = 0.01,
    flag_bots: BotFlagger | None = None,
) -> dict[str, Any]:
    """Run the benchmark on a demo store (see the module docstring); write JSON and a chart.

    Args:
        data_dir: a demo store directory with ``ground_truth.json``.
        out: write the results JSON here (and the chart beside it as ``.png`` unless ``chart``).
        chart: write the precision@k chart here.
        seed: IsolationForest seed and rule ties' tie-break.
        ks: the k of precision@k.
        validation_share: share of the earliest orders that form the history.
        alert_rate: alert rate of the recall figure.
        flag_bots: bot-burst flagger for events (see :func:`load_demo_store`).

    Returns:
        ``{"data", "selection", "models": {name: figures}, "variants", "best", "best_tied_with",
        "example_alerts", "seconds"}``; figures hold ``precision_at_k`` (``{"10": ...}``),
        ``recall_at_1pct``, ``average_precision``, ``alerts_for_full_recall``,
        ``recall_at_1pct_by_reason`` and the precision@k ``curve``.
    """
    if not 0.1 <= validation_share <= 0.9:
        raise InputError(f"validation_share must be between 0.1 and 0.9, not {validation_share}")
    if not ks or min(ks) < 1:
        raise InputError(f"every k must be at least 1, got {list(ks)}")
    started = time.perf_counter()
    data_dir = Path(data_dir)
    _log(f"reading {data_dir}")
    frames = load_demo_store(data_dir, flag_bots=flag_bots)
    features = build_order_features(
        frames.orders, frames.lines, users=frames.users, events=frames.events, items=frames.items
    )
    _, reasons = fraud_labels(data_dir, features.index)
    features = features.sort_values("created_ms", kind="stable")
    labels = features.index.isin(list(reasons))
    n_history = round(validation_share * len(features))
    history, reported = features.iloc[:n_history], features.iloc[n_history:]
    y_history, y_reported = labels[:n_history], labels[n_history:]
    if len(reported) < 20 or len(history) < 20:
        raise InputError(f"too few orders ({len(features)}) for the benchmark: need at least 40", path=data_dir)
    if not y_reported.any():
        raise InputError("no injected fraud among the later orders: nothing to measure", path=data_dir)
    _log(f"{len(features):,} orders ({int(labels.sum())} fraud): history {len(history):,}, reported {len(reported):,}")

    reported_reasons = [reasons.get(order_id, []) for order_id in reported.index]
    split = (history, reported, y_history, y_reported, reported_reasons)
    selection, figures, shoplm_scorer = _evaluate(split, ks, seed, frames.currency, alert_rate)
    variants: dict[str, Any] = {}
    for name, (drop, meaning) in VARIANTS.items():
        users = None if drop == "users" else frames.users
        if drop == "signup" and "created_ms" in frames.users:
            users = frames.users.drop(columns="created_ms")
        lesser = build_order_features(
            frames.orders,
            frames.lines,
            users=users,
            events=None if drop == "events" else frames.events,
            items=frames.items,
        ).loc[features.index]
        lesser_split = (lesser.iloc[:n_history], lesser.iloc[n_history:], y_history, y_reported, reported_reasons)
        chosen, lesser_figures, _ = _evaluate(lesser_split, ks, seed, frames.currency, alert_rate, curves=False)
        variants[name] = {
            "meaning": meaning,
            "selection": {k: chosen[k] for k in ("combine", "rule_weight", "one_sided", "history_average_precision")},
            "models": lesser_figures,
        }
        _log(f"{name}: shoplm recall@1% {lesser_figures['shoplm']['recall_at_1pct']}")
    results: dict[str, Any] = {"models": figures, "variants": variants}

    _, alerts = recall_at_rate(y_reported, np.zeros(len(y_reported)), alert_rate)
    rank = {
        name: (f["recall_at_1pct"], f["average_precision"], -f["alerts_for_full_recall"], *f["precision_at_k"].values())
        for name, f in figures.items()
    }
    best = max(rank, key=lambda name: rank[name])
    example = shoplm_scorer.alerts(reported, limit=3)
    results = {
        "data": {
            "store": str(data_dir),
            "orders": len(features),
            "fraud": int(labels.sum()),
            "history_orders": len(history),
            "history_fraud": int(y_history.sum()),
            "reported_orders": len(reported),
            "reported_fraud": int(y_reported.sum()),
            "alerts_at_1pct": alerts,
            "recall_ceiling_at_1pct": round(min(1.0, alerts / int(y_reported.sum())), 4),
            "bots_flagged": bool(flag_bots is not None),
        },
        "selection": selection,
        **results,
        "best": best,
        "best_tied_with": [name for name in rank if name != best and rank[name] == rank[best]],
        "example_alerts": example,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _log(f"results -> {out}")
        chart = chart or out.with_suffix(".png")
    if chart is not None:
        _chart(results, Path(chart))
        _log(f"chart -> {chart}")
    return results
