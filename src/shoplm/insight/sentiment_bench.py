"""``shoplm bench sentiment --mode ensemble``: soft voting of several heads, weights chosen on train only.

Members (each trains from the ``--train`` file alone):

- ``fused``: the default :class:`~shoplm.lm.classify.TextClassifier`, frozen e5 ``query``
  embeddings plus character 1-3-gram TF-IDF under one logistic-regression head. It is the
  baseline, measured in the same run;
- ``e5``: the same embeddings alone, logistic regression;
- ``e5_mlp``: the embeddings alone, one hidden ReLU layer;
- ``ngram``: character 1-3-gram TF-IDF alone (scikit-learn's ``TfidfVectorizer`` + logistic
  regression, its ``C`` chosen on the validation split).

Protocol: a stratified validation split (``valid``, default 10%) is carved from the training
file. Every member is fitted on the rest, and the ensemble weights (a grid over the simplex, step
``step``) are chosen by validation accuracy, log-loss breaking ties. Every member is then refitted
on the whole training file with the hyperparameters chosen for it (L2, temperature, ``C``), and
the weighted mean of their calibrated probabilities is scored on the test file, which is read
once. The embeddings come from the cache, so a member costs only its head.

Example:
    >>> report = run_sentiment_ensemble_benchmark(  # doctest: +SKIP
    ...     Path("chnsenticorp_train.tsv"), Path("chnsenticorp_dev.tsv"), text_col="text_a")
    >>> report["members"]["fused"]["accuracy"], report["ensemble"]["accuracy"]  # doctest: +SKIP
    (0.9192, 0.93)
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.lm.classify.bench import evaluate_predictions
from shoplm.lm.classify.classifier import TextClassifier
from shoplm.lm.classify.data import load_labelled
from shoplm.lm.classify.metrics import accuracy_by, stratified_holdout

__all__ = ["MEMBERS", "choose_weights", "run_sentiment_ensemble_benchmark"]

#: member name -> TextClassifier hyperparameters (``ngram`` is the scikit-learn n-gram model)
MEMBERS: dict[str, dict[str, Any] | None] = {
    "fused": {},
    "e5": {"ngram_features": 0},
    "e5_mlp": {"ngram_features": 0, "head": "mlp"},
    "ngram": None,
}
NGRAM_C_GRID = (1.0, 4.0, 16.0)


def _log(message: str) -> None:
    print(f"[bench sentiment ensemble] {message}", file=sys.stderr, flush=True)


class _NgramModel:
    """Character n-gram TF-IDF + logistic regression (scikit-learn); the member without embeddings."""

    def __init__(self, c: float, seed: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.c = c
        self.pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=200_000),
            LogisticRegression(C=c, max_iter=2000, random_state=seed),
        )

    def fit(self, texts: list[str], labels: list[str]) -> _NgramModel:
        self.pipeline.fit(texts, labels)
        return self

    def predict_proba(self, texts: list[str], labels: list[str]) -> np.ndarray:
        proba = self.pipeline.predict_proba(texts)
        order = [list(self.pipeline.classes_).index(label) for label in labels]
        return proba[:, order]


def choose_weights(
    probas: Sequence[np.ndarray], gold: np.ndarray, *, step: float = 0.1
) -> tuple[tuple[float, ...], float, float]:
    """The simplex weights (step ``step``) whose mixed probabilities are most accurate on ``gold``; then log-loss.

    Returns:
        (weights, accuracy, log-loss) of the best mix.

    Example:
        >>> good, bad = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.4, 0.6], [0.6, 0.4]])
        >>> choose_weights([good, bad], np.array([0, 1]))[0]
        (1.0, 0.0)
    """
    units = round(1 / step)
    best: tuple[float, float, tuple[float, ...]] | None = None
    for combo in itertools.product(range(units + 1), repeat=len(probas)):
        if sum(combo) != units:
            continue
        weights = tuple(c / units for c in combo)
        mixed = sum(w * p for w, p in zip(weights, probas, strict=True))
        acc = float((mixed.argmax(1) == gold).mean())
        nll = float(-np.log(np.clip(mixed[np.arange(len(gold)), gold], 1e-12, None)).mean())
        if best is None or (-acc, nll) < (-best[0], best[1]):  # ties keep the first mix found
            best = (acc, nll, weights)
    if best is None:
        raise InputError("no members to mix")
    return best[2], best[0], best[1]


def _fit_member(
    name: str, texts: list[str], labels: list[str], cache_dir: Path | None, threads: int, seed: int, **fixed: Any
) -> Any:
    if MEMBERS[name] is None:
        return _NgramModel(fixed.get("c", NGRAM_C_GRID[0]), seed).fit(texts, labels)
    params = {**(MEMBERS[name] or {}), "seed": seed}
    if "l2" in fixed:  # refit with what validation chose: no second cross-validation
        params.update(l2=fixed["l2"], calibration_folds=0)
    model = TextClassifier(**params).use(cache_dir, threads=threads)
    model.fit(texts, labels)
    if "temperature" in fixed:
        model.temperature_ = fixed["temperature"]
    return model


def _proba(model: Any, texts: list[str], labels: list[str]) -> np.ndarray:
    if isinstance(model, _NgramModel):
        return model.predict_proba(texts, labels)
    proba = model.predict_proba(texts)
    return proba[:, [[str(c) for c in model.labels].index(label) for label in labels]]


def run_sentiment_ensemble_benchmark(
    train: Path,
    test: Path | None = None,
    *,
    text_col: str = "text",
    label_col: str = "label",
    group_col: str | None = None,
    out: Path | None = None,
    holdout: float = 0.0,
    valid: float = 0.1,
    step: float = 0.1,
    members: Sequence[str] = tuple(MEMBERS),
    seed: int = 0,
    cache_dir: Path | None = Path("shoplm-data/cache/embeddings"),
    threads: int = 1,
) -> dict[str, Any]:
    """Each member's and the soft-voting ensemble's test accuracy, macro-F1 and ECE, in one run.

    Args:
        train, test: labelled files (as ``shoplm bench sentiment``); without ``test``, a stratified
            ``holdout`` share of ``train`` is the test set (split off before anything else).
        group_col: report accuracy per value of this column of the test rows.
        valid: share of the training rows held out to choose weights and the n-gram model's ``C``.
        step: grid step of the weights.
        members: which of :data:`MEMBERS`.

    Returns:
        ``{"members": {name: scores}, "ensemble": scores, "weights": {name: w}, "validation": ...}``;
        written to ``out`` as JSON when given.

    Raises:
        InputError: an unknown member, or neither a test file nor a hold-out.
    """
    unknown = [m for m in members if m not in MEMBERS]
    if unknown:
        raise InputError(f"unknown ensemble member(s) {unknown}; choose from {list(MEMBERS)}")
    started = time.perf_counter()
    frame = load_labelled(Path(train), text_col, label_col, group_col if test is None else None)
    if test is not None:
        test_frame = load_labelled(Path(test), text_col, label_col, group_col)
    elif holdout:
        keep, held = stratified_holdout(frame["label"].tolist(), holdout, seed=seed)
        frame, test_frame = frame.iloc[keep].reset_index(drop=True), frame.iloc[held].reset_index(drop=True)
    else:
        raise InputError("no test data: give a test file or a hold-out fraction (e.g. 0.2)")
    texts = [str(t) for t in frame["text"]]
    gold_all = [str(v) for v in frame["label"]]
    labels = sorted(set(gold_all))
    fit_rows, valid_rows = stratified_holdout(gold_all, valid, seed=seed)
    fit_texts, fit_gold = [texts[i] for i in fit_rows], [gold_all[i] for i in fit_rows]
    valid_texts, valid_gold = [texts[i] for i in valid_rows], [gold_all[i] for i in valid_rows]
    valid_y = np.array([labels.index(g) for g in valid_gold])

    chosen: dict[str, dict[str, Any]] = {}
    valid_probas: dict[str, np.ndarray] = {}
    for name in members:
        t0 = time.perf_counter()
        if MEMBERS[name] is None:
            scored = []
            for c in NGRAM_C_GRID:
                p = _proba(_NgramModel(c, seed).fit(fit_texts, fit_gold), valid_texts, labels)
                scored.append((-(p.argmax(1) == valid_y).mean(), c, p))
            _, c, p = min(scored, key=lambda s: (s[0], s[1]))
            chosen[name], valid_probas[name] = {"c": c}, p
        else:
            model = _fit_member(name, fit_texts, fit_gold, cache_dir, threads, seed)
            chosen[name] = {"l2": model.l2_, "temperature": model.temperature_}
            valid_probas[name] = _proba(model, valid_texts, labels)
        acc = float((valid_probas[name].argmax(1) == valid_y).mean())
        _log(f"{name}: validation accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)")
    weights, valid_acc, valid_nll = choose_weights([valid_probas[m] for m in members], valid_y, step=step)
    _log(f"weights {dict(zip(members, weights, strict=True))}: validation accuracy {valid_acc:.4f}")

    test_texts = [str(t) for t in test_frame["text"]]
    test_gold = [str(v) for v in test_frame["label"]]
    report_members: dict[str, Any] = {}
    test_probas: dict[str, np.ndarray] = {}
    for name in members:
        t0 = time.perf_counter()
        model = _fit_member(name, texts, gold_all, cache_dir, threads, seed, **chosen[name])
        test_probas[name] = _proba(model, test_texts, labels)
        report_members[name] = _scores(test_gold, test_probas[name], labels, test_frame, group_col)
        report_members[name]["validation_accuracy"] = float((valid_probas[name].argmax(1) == valid_y).mean())
        report_members[name]["chosen"] = chosen[name]
        _log(f"{name}: refitted on all {len(texts):,}, test accuracy {report_members[name]['accuracy']:.4f}")
        _log(f"  ({time.perf_counter() - t0:.0f} s)")
    mixed = sum(w * test_probas[m] for w, m in zip(weights, members, strict=True))
    report: dict[str, Any] = {
        "train_file": str(train),
        "test_file": str(test) if test else None,
        "protocol": (
            f"weights and n-gram C chosen on a stratified {valid:g} validation split of the training file (seed "
            f"{seed}); members refitted on the whole training file; the test set read once"
        ),
        "n_train": len(texts),
        "n_test": len(test_texts),
        "members": report_members,
        "baseline": "fused",
        "weights": dict(zip(members, weights, strict=True)),
        "validation": {"n": len(valid_rows), "accuracy": valid_acc, "log_loss": valid_nll},
        "ensemble": _scores(test_gold, mixed, labels, test_frame, group_col),
        "seconds": round(time.perf_counter() - started, 1),
        "cache_dir": str(cache_dir) if cache_dir else None,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        _chart(report, out.with_suffix(".png"))
    return report


def _scores(
    gold: list[str], proba: np.ndarray, labels: list[str], frame: pd.DataFrame, group_col: str | None
) -> dict[str, Any]:
    scores = evaluate_predictions(gold, proba, labels)
    predicted = [labels[i] for i in proba.argmax(axis=1)]
    if group_col and "group" in frame.columns:
        scores["per_group"] = accuracy_by(gold, predicted, frame["group"].astype(str).tolist())
    return scores


def _chart(report: dict[str, Any], path: Path) -> None:
    """Test accuracy of each member and the ensemble (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*report["members"], "ensemble"]
    values = [report["members"][n]["accuracy"] * 100 for n in report["members"]] + [
        report["ensemble"]["accuracy"] * 100
    ]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=120)
    bars = ax.bar(names, values, color=["#868e96" if n != "ensemble" else "#3b5bdb" for n in names])
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.1, f"{value:.2f}", ha="center", fontsize=8)
    ax.set_ylim(min(values) - 3, max(values) + 1.5)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{Path(report['test_file'] or report['train_file']).name}: members vs soft-voting ensemble")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
