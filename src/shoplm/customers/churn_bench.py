"""``shoplm bench churn``: the behavioural churn model against BG/NBD and an RFM logistic regression.

Protocol, on an Online Retail file (any file of that layout):

- cutoffs: the 1st and 15th of each month with 30 days of history before and a full
  ``horizon_days`` label window after (:func:`~shoplm.customers.churn.default_cutoffs`);
  churn = no purchase in the ``horizon_days`` after the cutoff, for every customer who
  bought before it;
- the last ``n_evaluated`` month starts are reported; the month start before them is the
  validation cutoff, the only one the LightGBM settings are chosen on;
- each evaluated cutoff E gets models trained only on cutoffs whose label windows end by E,
  from lines before E: nothing after E is seen in training;
- models: ``shoplm`` (:class:`~shoplm.customers.churn.ChurnModel`), ``bgnbd`` (1 - P(alive),
  BG/NBD fitted before the cutoff), ``bgnbd_p_silent`` (BG/NBD's P(no purchase in the
  horizon), the stronger BG/NBD score), ``rfm_logreg`` (scikit-learn logistic regression on
  recency, frequency, log monetary value); ``shoplm_no_basket``, the same model without the
  basket vectors (an ablation of the purchase-sequence embedding).

AUC and PR-AUC are averaged over the evaluated cutoffs; ``per_cutoff`` has each one;
``auc_difference_ci95`` gives a paired bootstrap interval (customers resampled within each
cutoff) of shoplm's mean AUC minus each other model's.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.customers.churn import ChurnModel, default_cutoffs
from shoplm.customers.churn_features import churn_features, churn_labels
from shoplm.errors import InputError

__all__ = ["RFM_COLUMNS", "run_churn_benchmark"]

RFM_COLUMNS = ["recency_days", "purchase_days", "spend_total"]
#: LightGBM settings tried on the validation cutoff (rounds chosen along the way)
_GRID = {"num_leaves": (7, 15, 31), "min_child_samples": (20, 100)}
_ROUNDS = tuple(range(50, 601, 50))


def _log(message: str) -> None:
    print(f"[churn] {message}", file=sys.stderr, flush=True)


def _metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"AUC": float(roc_auc_score(labels, scores)), "PR_AUC": float(average_precision_score(labels, scores))}


def _difference_interval(
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]], ours: str, other: str, seed: int, rounds: int = 200
) -> list[float]:
    """95 % interval of mean-over-cutoffs AUC(ours) - AUC(other), customers resampled per cutoff (paired)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(rounds):
        per_cutoff = []
        for (labels, mine), (_, theirs) in zip(pooled[ours], pooled[other], strict=True):
            pick = rng.integers(0, len(labels), len(labels))
            if labels[pick].min() == labels[pick].max():
                continue
            per_cutoff.append(roc_auc_score(labels[pick], mine[pick]) - roc_auc_score(labels[pick], theirs[pick]))
        differences.append(float(np.mean(per_cutoff)))
    low, high = np.percentile(differences, [2.5, 97.5])
    return [float(low), float(high)]


def _rfm_matrix(features: pd.DataFrame) -> np.ndarray:
    values = features[RFM_COLUMNS].to_numpy(dtype=float).copy()
    values[:, 2] = np.log1p(np.maximum(values[:, 2], 0.0))
    return values


def _rfm_logreg(frame: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows, labels = [], []
    for cutoff in cutoffs:
        features = churn_features(frame, cutoff, bgnbd=False)
        rows.append(_rfm_matrix(features))
        labels.append(churn_labels(frame, cutoff, horizon).reindex(features.index).to_numpy())
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(np.vstack(rows), np.concatenate(labels))


def _choose_settings(
    frame: pd.DataFrame, cutoffs: list[pd.Timestamp], validation: pd.Timestamp, horizon: int, seed: int
) -> dict[str, Any]:
    """LightGBM settings with the best AUC on the validation cutoff, from models trained before it."""
    from sklearn.metrics import roc_auc_score

    pool = [c for c in cutoffs if c + pd.Timedelta(days=horizon) <= validation][-ChurnModel().max_cutoffs :]
    if not pool:
        raise InputError(
            f"no training cutoff ends its {horizon}-day window before the validation cutoff {validation.date()}: "
            "the file covers too short a period for this protocol"
        )
    before = frame[frame["timestamp"] < validation]
    probe = ChurnModel(horizon_days=horizon, seed=seed).fit_item_vectors(before[before["timestamp"] < max(pool)])
    table, labels, _ = probe.training_table(before, pool)
    features = probe._features(frame, validation)
    truth = churn_labels(frame, validation, horizon).reindex(features.index).to_numpy()
    trials = []
    for leaves, children in itertools.product(_GRID["num_leaves"], _GRID["min_child_samples"]):
        model = ChurnModel(
            horizon_days=horizon, num_leaves=leaves, min_child_samples=children, n_estimators=max(_ROUNDS), seed=seed
        )
        booster = model._train(table, labels)
        values = features.reindex(columns=table.columns).to_numpy(dtype=float)
        for rounds in _ROUNDS:
            auc = float(roc_auc_score(truth, booster.predict(values, num_iteration=rounds)))
            trials.append({"num_leaves": leaves, "min_child_samples": children, "n_estimators": rounds, "AUC": auc})
    best = max(trials, key=lambda t: t["AUC"])
    _log(f"validation {validation.date()} (trained on {len(pool)} cutoffs): best {best}")
    return {"chosen": {k: best[k] for k in ("num_leaves", "min_child_samples", "n_estimators")}, "trials": trials}


def _roc_chart(path: Path, pooled: dict[str, tuple[np.ndarray, np.ndarray]], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figure, axis = plt.subplots(figsize=(5.6, 5.2))
    for name, (labels, scores) in pooled.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name} (mean AUC {summary[name]['AUC']:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("Churn in the next 90 days, evaluated cutoffs pooled")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run_churn_benchmark(
    data: str | Path | pd.DataFrame,
    out: str | Path | None = None,
    *,
    horizon_days: int = 90,
    n_evaluated: int = 3,
    seed: int = 0,
    chart: str | Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark described in the module docstring; write JSON (and a PNG) if asked.

    Args:
        data: an Online Retail CSV(.gz) path, or a transactions frame already read.
        out: JSON report path (the ROC chart goes beside it as ``.png`` unless ``chart`` is given).
        horizon_days: churn window after each cutoff.
        n_evaluated: how many of the latest cutoffs are reported.
        seed: model seed.
        chart: PNG path.

    Returns:
        The report: ``{"models": {name: {"AUC", "PR_AUC"}}, "per_cutoff": ..., ...}``.
    """
    from shoplm.ingest.transactions import read_retail_transactions

    started = time.perf_counter()
    frame = data if isinstance(data, pd.DataFrame) else read_retail_transactions(data).frame
    cutoffs = default_cutoffs(frame, horizon_days)  # the 1st and 15th: training rows
    months = [c for c in cutoffs if c.day == 1]  # month starts: validated and reported
    window = pd.Timedelta(days=horizon_days)
    if n_evaluated < 1 or len(months) < n_evaluated + 1 or cutoffs[0] + window > months[-n_evaluated - 1]:
        span = f"{frame['timestamp'].min().date()}..{frame['timestamp'].max().date()}" if len(frame) else "nothing"
        raise InputError(
            f"the data cover {span}, {len(months)} monthly cutoff(s) with a full {horizon_days}-day window; this "
            f"protocol needs a training cutoff whose window ends by the validation month, then {n_evaluated} "
            "evaluated month(s): use a longer file, a shorter --horizon-days or fewer --evaluate"
        )
    evaluated, validation = months[-n_evaluated:], months[-n_evaluated - 1]
    _log(f"{len(frame):,} lines; cutoffs {[str(c.date()) for c in cutoffs]}; validation {validation.date()}")
    selection = _choose_settings(frame, cutoffs, validation, horizon_days, seed)
    per_cutoff: list[dict[str, Any]] = []
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    importance: dict[str, float] = {}
    for cutoff in evaluated:
        pool = [c for c in cutoffs if c + pd.Timedelta(days=horizon_days) <= cutoff]
        before = frame[frame["timestamp"] < cutoff]
        model = ChurnModel(horizon_days=horizon_days, seed=seed, **selection["chosen"]).fit(before, cutoffs=pool)
        features = model.features(frame, cutoff)
        labels = churn_labels(frame, cutoff, horizon_days).reindex(features.index).to_numpy()
        rfm = _rfm_logreg(before, [pd.Timestamp(c) for c in model.cutoffs_], horizon_days)
        settings = {**selection["chosen"], "n_components": 0}
        plain = ChurnModel(horizon_days=horizon_days, seed=seed, **settings).fit(before, cutoffs=pool)
        scores = {
            "shoplm": model.predict_proba(frame, cutoff).reindex(features.index).to_numpy(),
            "bgnbd": 1.0 - features["bgnbd_p_alive"].fillna(1.0).to_numpy(),
            "bgnbd_p_silent": features["bgnbd_p_silent"].fillna(0.0).to_numpy(),
            "rfm_logreg": rfm.predict_proba(_rfm_matrix(features))[:, 1],
            "shoplm_no_basket": plain.predict_proba(frame, cutoff).reindex(features.index).to_numpy(),
        }
        row = {
            "cutoff": str(cutoff.date()),
            "training_cutoffs": model.cutoffs_,
            "customers": len(labels),
            "churn_rate": float(labels.mean()),
            "models": {name: _metrics(labels, s) for name, s in scores.items()},
        }
        per_cutoff.append(row)
        for name, s in scores.items():
            pooled.setdefault(name, []).append((labels, s))
        for group, gain in model.feature_importance().items():
            importance[group] = importance.get(group, 0.0) + gain
        _log(f"{row['cutoff']}: " + ", ".join(f"{n} AUC {m['AUC']:.4f}" for n, m in row["models"].items()))
    names = list(per_cutoff[0]["models"])
    summary = {
        name: {
            metric: float(np.mean([row["models"][name][metric] for row in per_cutoff])) for metric in ("AUC", "PR_AUC")
        }
        for name in names
    }
    total_gain = sum(importance.values()) or 1.0
    report: dict[str, Any] = {
        "data": "<frame>" if isinstance(data, pd.DataFrame) else str(data),
        "protocol": {
            "horizon_days": horizon_days,
            "cutoffs": [str(c.date()) for c in cutoffs],
            "validation_cutoff": str(validation.date()),
            "evaluated_cutoffs": [str(c.date()) for c in evaluated],
            "aggregate": "mean over the evaluated cutoffs",
        },
        "models": summary,
        "auc_gain_over_bgnbd": summary["shoplm"]["AUC"] - summary["bgnbd"]["AUC"],
        "auc_gain_over_bgnbd_p_silent": summary["shoplm"]["AUC"] - summary["bgnbd_p_silent"]["AUC"],
        "auc_gain_over_rfm_logreg": summary["shoplm"]["AUC"] - summary["rfm_logreg"]["AUC"],
        "auc_difference_ci95": {
            other: _difference_interval(pooled, "shoplm", other, seed) for other in names if other != "shoplm"
        },
        "per_cutoff": per_cutoff,
        "chosen_settings": selection["chosen"],
        "validation_trials": selection["trials"],
        "gain_share_by_group": {k: round(v / total_gain, 4) for k, v in importance.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2))
        chart = chart or out_path.with_suffix(".png")
    if chart is not None:
        merged = {
            n: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v]))
            for n, v in pooled.items()
            if n != "shoplm_no_basket"
        }
        _roc_chart(Path(chart), merged, summary)
        report["chart"] = str(chart)
    return report
