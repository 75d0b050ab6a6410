"""``shoplm bench opinion``: spike detection against the demo store's injected complaint spikes.

Each demo store carries 3-5 documented spikes (``ground_truth.json`` → ``opinion_spikes``). The
detector and its two baselines (a 3-sigma z-score and a fixed count-and-share rule) run on the
stores' reviews (negative = rating 1-2, as the monitor falls back to without a sentiment model):

- **precision**: share of alerts whose negative reviews are at least half injected ones;
- **recall**: share of spikes with an alert at the spike's own level and key on a day from its
  start to two days after its end;
- **delay**: days from a spike's start to the first such alert day (detected spikes only).

Each method's settings are chosen by F1 on the validation stores (other seeds) from a small
grid; the reported stores are only scored with the chosen settings.

Example:
    >>> sorted(GRID)
    ['fdr', 'rule', 'zscore']
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.insight.opinion import DAY_MS, OpinionAlert, OpinionConfig, detect_spikes, parse_day

#: days after a spike's last day on which an alert still counts as finding it
GRACE_DAYS = 2
#: settings tried per method (each a dict of OpinionConfig fields)
GRID: dict[str, list[dict[str, Any]]] = {
    "fdr": [
        {"fdr": fdr, "tests": tests, "min_negative": m}
        for fdr in (0.01, 0.05, 0.1, 0.2)
        for tests in (("share", "volume"), ("share",), ("volume",))
        for m in (2, 3)
    ],
    "zscore": [{"z": z, "min_negative": m} for z in (2.0, 3.0, 4.0) for m in (2, 3)],
    "rule": [{"rule_negatives": n} for n in (2, 3, 4)],
}
NAMES = {
    "fdr": "shoplm: share + volume tests, BH FDR",
    "zscore": "baseline: z-score of daily negatives",
    "rule": "baseline: fixed rule (N negatives, share >= 1/2)",
}


def load_store(directory: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A demo store's reviews as the detector's frame, and its injected spikes.

    Raises:
        InputError: not a demo store directory with reviews.jsonl, items.csv and ground_truth.json.
    """
    directory = Path(directory)
    paths = [directory / name for name in ("reviews.jsonl", "items.csv", "ground_truth.json")]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"not a demo store (missing {', '.join(missing)})", path=directory)
    reviews = pd.read_json(paths[0], lines=True, dtype=False)
    items = pd.read_csv(paths[1], dtype=str, keep_default_na=False).set_index("item_id")
    truth = json.loads(paths[2].read_text(encoding="utf-8"))
    frame = pd.DataFrame(
        {
            "review_id": reviews["review_id"].astype(str),
            "ts_ms": pd.to_datetime(reviews["timestamp"], utc=True).astype("int64") // 1_000_000,
            "negative": pd.to_numeric(reviews["rating"]) <= 2,
            "item": reviews["item_id"].astype(str),
            "category": reviews["item_id"].map(items["category"]).fillna(""),
            "brand": reviews["item_id"].map(items["brand"]).fillna(""),
        }
    )
    return frame, list(truth.get("opinion_spikes", []))


def score_alerts(alerts: Sequence[OpinionAlert], spikes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """True and false alerts, found spikes and their delays (see the module docstring).

    Example:
        >>> spike = {"level": "item", "key": "I1", "start": "2026-03-01", "end": "2026-03-02", "review_ids": ["r1"]}
        >>> day = "2026-03-02"
        >>> alert = OpinionAlert("item", "I1", day, day, [day], None, None, 1, 1, 0.0, ["r1"])
        >>> s = score_alerts([alert], [spike]); (s["true_alerts"], s["found"], s["delays"])
        (1, 1, [1])
    """
    injected = {r for spike in spikes for r in spike["review_ids"]}
    true_alerts = sum(2 * len(injected.intersection(a.review_ids)) >= len(a.review_ids) > 0 for a in alerts)
    delays = []
    for spike in spikes:
        start, end = parse_day(spike["start"]), parse_day(spike["end"]) + GRACE_DAYS
        days = [
            parse_day(day)
            for a in alerts
            if a.level == spike["level"] and a.key == spike["key"]
            for day in a.days
            if start <= parse_day(day) <= end
        ]
        if days:
            delays.append(min(days) - start)
    return {
        "alerts": len(alerts),
        "true_alerts": int(true_alerts),
        "spikes": len(spikes),
        "found": len(delays),
        "delays": delays,
    }


def summarise(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall, F1 and delays pooled over stores."""
    alerts = sum(p["alerts"] for p in parts)
    true_alerts = sum(p["true_alerts"] for p in parts)
    spikes = sum(p["spikes"] for p in parts)
    delays = [d for p in parts for d in p["delays"]]
    precision = true_alerts / alerts if alerts else 0.0
    recall = len(delays) / spikes if spikes else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "alerts": alerts,
        "false_alerts": alerts - true_alerts,
        "spikes": spikes,
        "found": len(delays),
        "mean_delay_days": round(float(np.mean(delays)), 3) if delays else None,
        "max_delay_days": int(max(delays)) if delays else None,
    }


def _run(
    frames: Sequence[tuple[pd.DataFrame, list[dict[str, Any]]]], method: str, config: OpinionConfig
) -> list[dict[str, Any]]:
    return [score_alerts(detect_spikes(frame, config=config, method=method), spikes) for frame, spikes in frames]


def run_opinion_benchmark(
    validation: Sequence[Path],
    reported: Sequence[Path],
    out: Path | None = None,
) -> dict[str, Any]:
    """Choose each method's settings on the ``validation`` stores; report them on the ``reported`` ones.

    Args:
        validation: demo store directories used only to choose settings.
        reported: demo store directories the figures are reported on (other seeds).
        out: write the results JSON here and the chart beside it (``.png``).

    Returns:
        ``{"methods": {name: {"settings", "validation", "reported", "per_store"}}, "stores", ...}``.

    Raises:
        InputError: no stores, or a store that is not a demo store.
    """
    if not validation or not reported:
        raise InputError("need at least one validation and one reported demo store")
    started = time.perf_counter()
    base = OpinionConfig(max_reviews=100_000)  # every cause review counts when scoring alerts
    chosen_sets = {"validation": [load_store(p) for p in validation], "reported": [load_store(p) for p in reported]}
    methods: dict[str, Any] = {}
    for method, grid in GRID.items():
        tried = []
        for options in grid:
            config = replace(base, **options)
            summary = summarise(_run(chosen_sets["validation"], method, config))
            tried.append((summary["f1"], summary["precision"], -len(tried), options, summary))
            print(f"  {method} {options}: validation F1 {summary['f1']:.3f}", file=sys.stderr)
        best = max(tried, key=lambda t: t[:3])
        config = replace(base, **best[3])
        per_store = _run(chosen_sets["reported"], method, config)
        methods[method] = {
            "name": NAMES[method],
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in best[3].items()},
            "validation": best[4],
            "reported": summarise(per_store),
            "per_store": [
                {"store": str(path), **{k: v for k, v in summarise([part]).items() if k != "max_delay_days"}}
                for path, part in zip(reported, per_store, strict=True)
            ],
        }
    # The shipped defaults (what `shoplm insight alerts --run` uses), unselected, beside the tuned runs.
    per_store = _run(chosen_sets["reported"], "fdr", base)
    methods["fdr_defaults"] = {
        "name": "shoplm with its shipped defaults (not tuned)",
        "settings": {"fdr": base.fdr, "tests": list(base.tests), "min_negative": base.min_negative},
        "validation": summarise(_run(chosen_sets["validation"], "fdr", base)),
        "reported": summarise(per_store),
        "per_store": [
            {"store": str(path), **{k: v for k, v in summarise([part]).items() if k != "max_delay_days"}}
            for path, part in zip(reported, per_store, strict=True)
        ],
    }
    spikes = [s for _, found in chosen_sets["reported"] for s in found]
    results = {
        "protocol": (
            "settings per method chosen by F1 on the validation stores from GRID; figures on the reported stores; "
            f"negative = rating 1-2; an alert is true when at least half its negative reviews are injected; a "
            f"spike is found by an alert at its level and key from its start to {GRACE_DAYS} days after its end"
        ),
        "validation_stores": [str(p) for p in validation],
        "reported_stores": [str(p) for p in reported],
        "reported_spikes": {
            "count": len(spikes),
            "by_level": {lv: sum(s["level"] == lv for s in spikes) for lv in ("item", "brand", "category")},
            "reviews_per_day": round(float(np.mean([np.mean(s["per_day"]) for s in spikes])), 2) if spikes else None,
        },
        "defaults": asdict(OpinionConfig()),
        "methods": methods,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=list) + "\n", encoding="utf-8")
        _chart(results, out.with_suffix(".png"))
    return results


def _chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["methods"])
    figures = [results["methods"][m]["reported"] for m in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(names))
    for offset, metric in ((-0.2, "precision"), (0.2, "recall")):
        left.bar(x + offset, [f[metric] for f in figures], width=0.4, label=metric)
    left.set_xticks(x, names)
    left.set_ylim(0, 1.05)
    left.set_title(f"{results['reported_spikes']['count']} injected spikes, reported stores")
    left.legend()
    right.bar(x, [f["mean_delay_days"] or 0 for f in figures], color="#f08c00")
    right.set_xticks(x, names)
    right.set_ylabel("days from spike start to first alert")
    right.set_title("mean detection delay (found spikes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["DAY_MS", "GRID", "load_store", "run_opinion_benchmark", "score_alerts", "summarise"]
