"""The CTR benchmark: logistic regression, LightGBM and DCN-v2, with and without the LM text features,
on a demo store's impression logs, against the oracle (the generator's true click probabilities).

Split by time: the last ``test_days`` of impressions are the test set; the last ``val_days`` before
them are the validation set (early stopping and the one setting chosen per model); the rest train.
A share of the catalog (``cold_share``) is held out of everything before the test window: new
items, the cold-item slice. Features of every impression use only what was logged before it.

Example:
    >>> import numpy as np
    >>> ece = expected_calibration_error(np.array([0.2, 0.2]), np.array([True, False]))
    >>> round(ece, 2)
    0.3
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.lm.classify.metrics import expected_calibration_error
from shoplm.marketing.ctr import CtrScorer, GbmCtr, LogisticCtr
from shoplm.marketing.ctr_features import CtrFeaturizer

DAY_MS = 86_400_000
MODEL_NAMES = ("logistic", "lightgbm", "dcn_v2")


@dataclass
class DemoLogs:
    """The files of a demo store the bench reads (``p_click`` kept apart: evaluation only)."""

    impressions: pd.DataFrame
    p_click: np.ndarray
    events: pd.DataFrame
    items: pd.DataFrame


def read_demo_logs(demo_dir: Path) -> DemoLogs:
    """Read ``impressions.parquet``, ``events.parquet`` and ``items.csv`` of a demo directory."""
    demo_dir = Path(demo_dir)
    path = demo_dir / "impressions.parquet"
    if not path.exists():
        raise InputError(f"{path} does not exist: point --data at a demo store (shoplm demo, or --seed to generate)")
    imps = pd.read_parquet(path).rename(columns={"ts": "ts_ms"})
    p_click = imps.pop("p_click").to_numpy(dtype=np.float64) if "p_click" in imps else np.full(len(imps), np.nan)
    imps["clicked"] = imps["clicked"].astype(bool)
    events = pd.read_parquet(demo_dir / "events.parquet", columns=["user_id", "item_id", "event_type", "timestamp"])
    events = events.rename(columns={"timestamp": "ts_ms"})
    items = pd.read_csv(demo_dir / "items.csv", dtype={"item_id": str}, keep_default_na=False)
    return DemoLogs(imps, p_click, events, items)


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(p, 1e-6, 1 - 1e-6)
    if len(np.unique(y)) < 2:
        return {"AUC": float("nan"), "logloss": float("nan"), "ECE": float("nan"), "n": len(y)}
    return {
        "AUC": round(float(roc_auc_score(y, p)), 4),
        "logloss": round(float(log_loss(y, p)), 4),
        "ECE": round(expected_calibration_error(p, y.astype(bool)), 4),
        "n": len(y),
    }


def _make_model(name: str, cardinalities: dict[str, int], setting: Any, seed: int) -> Any:
    if name == "logistic":
        return LogisticCtr(categorical=cardinalities, C=setting)
    if name == "lightgbm":
        return GbmCtr(categorical=cardinalities, num_leaves=setting, seed=seed)
    from shoplm.marketing.ctr_deep import DeepCtr

    return DeepCtr(categorical=cardinalities, embed_dim=setting, epochs=6, batch_size=2048, seed=seed)


#: The one setting each model chooses on the validation set (lowest validation logloss).
#: DCN-v2 has one (its epochs are early-stopped on validation): on one shared core, a second costs minutes.
SETTINGS: dict[str, tuple[Any, ...]] = {"logistic": (0.1, 1.0), "lightgbm": (15, 63), "dcn_v2": (8,)}


def run_ctr_benchmark(
    logs: DemoLogs,
    item_vectors: np.ndarray,
    *,
    test_days: int = 21,
    val_days: int = 14,
    cold_share: float = 0.1,
    seed: int = 0,
    settings: dict[str, tuple[Any, ...]] | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict[str, Any]:
    """Train and evaluate every model with and without text features; see the module docstring.

    Args:
        logs: the demo store's logs.
        item_vectors: the LM vector of every catalog row (``logs.items`` order).
        test_days, val_days: the sizes of the test and validation windows.
        cold_share: share of items held out of everything before the test window.
        seed: seeds the cold items and the models.
        settings: the settings each model chooses from on validation (default :data:`SETTINGS`).
        log: progress lines.

    Returns:
        ``{"models": {name: {AUC, logloss, ECE}}, "oracle_auc", "oracle", "without_text", "cold_items",
        "serving_ms_per_100", "settings", "split"}``.
    """
    imps = logs.impressions.reset_index(drop=True)
    end = int(imps["ts_ms"].max()) + 1
    test_start, val_start = end - test_days * DAY_MS, end - (test_days + val_days) * DAY_MS
    rng = np.random.default_rng(seed)
    item_ids = logs.items["item_id"].astype(str).to_numpy()
    cold = set(rng.choice(item_ids, size=round(cold_share * len(item_ids)), replace=False).tolist())
    is_cold = imps["item_id"].isin(cold).to_numpy()
    before_test = imps["ts_ms"].to_numpy() < test_start
    keep = ~(is_cold & before_test)  # new items: no impressions before the test window
    imps, p_click, is_cold = imps[keep].reset_index(drop=True), logs.p_click[keep], is_cold[keep]
    ts = imps["ts_ms"].to_numpy()
    train, val, test = ts < val_start, (ts >= val_start) & (ts < test_start), ts >= test_start
    if min(train.sum(), val.sum(), test.sum()) == 0 or imps["clicked"][train].nunique() < 2:
        raise InputError("the log is too short for the split: need impressions before, in and after validation")
    y = imps["clicked"].to_numpy(dtype=bool)
    n_cold = int(is_cold[test].sum())
    log(f"impressions: train {train.sum():,}, validation {val.sum():,}, test {test.sum():,}; cold test {n_cold:,}")

    started = time.perf_counter()
    featurizer = CtrFeaturizer().fit(
        imps[train], logs.events[logs.events["ts_ms"] < val_start], logs.items, item_vectors
    )
    table = featurizer.log_features(imps, logs.events)
    log(f"features: {table.shape[1]} columns in {time.perf_counter() - started:.1f} s")
    text_columns = [c for c in table.columns if c.startswith(("emb_", "text_"))]
    cards = featurizer.cardinalities

    results: dict[str, Any] = {"models": {}, "without_text": {}, "cold_items": {}, "settings": {}, "fit_seconds": {}}
    predictions: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    for with_text in (True, False):
        columns = list(table.columns) if with_text else [c for c in table.columns if c not in text_columns]
        X = table[columns]
        for name in MODEL_NAMES:
            started = time.perf_counter()
            best = None
            for setting in (settings or SETTINGS)[name]:
                model = _make_model(name, cards, setting, seed).fit(X[train], y[train], X[val], y[val])
                loss = _metrics(y[val], model.predict_proba(X[val]))["logloss"]
                if best is None or loss < best[0]:
                    best = (loss, setting, model)
            _, setting, model = best  # type: ignore[misc]
            p = model.predict_proba(X[test])
            key = name if with_text else f"{name}"
            bucket = results["models"] if with_text else results["without_text"]
            bucket[key] = {k: v for k, v in _metrics(y[test], p).items() if k != "n"}
            label = f"{name}{'' if with_text else ' (no text)'}"
            results["cold_items"][label] = _metrics(y[test & is_cold], p[is_cold[test]])
            results["settings"][label] = setting
            results["fit_seconds"][label] = round(time.perf_counter() - started, 1)
            predictions[label] = p
            if with_text:
                fitted[name] = model
            log(
                f"{label}: test AUC {bucket[key]['AUC']:.4f}, logloss {bucket[key]['logloss']:.4f} "
                f"({results['fit_seconds'][label]:.0f} s, setting {setting})"
            )
    results["oracle_auc"] = _metrics(y[test], p_click[test])["AUC"]
    results["oracle"] = {k: v for k, v in _metrics(y[test], p_click[test]).items() if k != "n"}
    results["cold_items"]["oracle"] = _metrics(y[test & is_cold], p_click[test & is_cold])
    results["text_gain_auc"] = {
        n: round(results["models"][n]["AUC"] - results["without_text"][n]["AUC"], 4) for n in MODEL_NAMES
    }
    results["serving_ms_per_100"] = _serving_latency(featurizer, fitted, imps, seed)
    results["split"] = {
        "train": int(train.sum()),
        "validation": int(val.sum()),
        "test": int(test.sum()),
        "cold_test": int((test & is_cold).sum()),
        "test_days": test_days,
        "val_days": val_days,
        "cold_share": cold_share,
    }
    best = max(MODEL_NAMES, key=lambda n: results["models"][n]["AUC"])
    results["best_model"] = best
    results["gap_to_oracle"] = round(results["oracle_auc"] - results["models"][best]["AUC"], 4)
    results["_test_predictions"] = {"y": y[test], "p": predictions, "oracle": p_click[test]}
    return results


def _serving_latency(
    featurizer: CtrFeaturizer, models: dict[str, Any], imps: pd.DataFrame, seed: int
) -> dict[str, float]:
    """Median milliseconds to score 100 candidates for one user (features + model), per model."""
    rng = np.random.default_rng(seed)
    users = rng.choice(imps["user_id"].unique(), size=50)
    out = {}
    for name, model in models.items():
        scorer = CtrScorer(featurizer, model)
        times = []
        for user in users:
            candidates = rng.choice(featurizer.item_ids_, size=100, replace=False).tolist()
            started = time.perf_counter()
            scorer.score(str(user), candidates, scene="home")
            times.append((time.perf_counter() - started) * 1000)
        out[name] = round(float(np.median(times[5:])), 3)
    return out


def write_outputs(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write the JSON (``models`` and ``oracle_auc`` at the top) and a PNG chart beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    detail = results.pop("_test_predictions", None)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    names = list(results["models"])
    x = np.arange(len(names))
    left.bar(x - 0.2, [results["models"][n]["AUC"] for n in names], 0.4, label="with text (e5)")
    left.bar(x + 0.2, [results["without_text"][n]["AUC"] for n in names], 0.4, label="without text")
    left.axhline(results["oracle_auc"], color="black", linestyle="--", label=f"oracle {results['oracle_auc']:.3f}")
    left.set_xticks(x, names)
    low = min(min(results["without_text"][n]["AUC"] for n in names), results["oracle_auc"]) - 0.03
    left.set_ylim(low, results["oracle_auc"] + 0.02)
    left.set_ylabel("test AUC")
    left.set_title("CTR models vs the oracle (temporal test split)")
    left.legend(loc="lower right", fontsize=8)
    if detail is not None:
        y = detail["y"]
        bins = np.linspace(0, 1, 11)
        for label, p in [*detail["p"].items(), ("oracle", detail["oracle"])]:
            if "(no text)" in label:
                continue
            idx = np.clip(np.digitize(p, bins) - 1, 0, 9)
            mean_p = [p[idx == b].mean() for b in range(10) if (idx == b).sum() >= 50]
            rate = [y[idx == b].mean() for b in range(10) if (idx == b).sum() >= 50]
            right.plot(mean_p, rate, marker="o", label=label)
        right.plot([0, 1], [0, 1], color="grey", linestyle=":")
        right.set_xlabel("predicted CTR")
        right.set_ylabel("observed CTR")
        right.set_title("reliability (test)")
        right.legend(fontsize=8)
    fig.tight_layout()
    png = out.with_suffix(".png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return out, png
