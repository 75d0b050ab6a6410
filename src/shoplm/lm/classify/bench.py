"""Benchmark a :class:`~shoplm.lm.classify.TextClassifier` on a labelled file: accuracy, macro-F1, ECE, latency.

Protocols: a separate test file; a stratified hold-out fraction (``holdout=0.2``); or k-fold
cross-validation (``folds=10``, stratified). Files are CSV, TSV or ``label text`` lines
(``.all`` / ``.txt``, as ``custrev.all``), by extension.

Example:
    >>> from pathlib import Path
    >>> # run_classifier_benchmark(Path("bitext.csv"), None, text_col="instruction", label_col="intent",
    >>> #                          holdout=0.2, out=Path("results.json"))
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.lm.classify.classifier import TextClassifier
from shoplm.lm.classify.data import load_labelled
from shoplm.lm.classify.metrics import (
    accuracy,
    accuracy_by,
    confusion_pairs,
    expected_calibration_error,
    macro_f1,
    stratified_folds,
    stratified_holdout,
)

__all__ = ["evaluate_predictions", "measure_latency", "run_classifier_benchmark"]

DEFAULT_CACHE_DIR = Path("shoplm-data/cache/embeddings")


def evaluate_predictions(gold: list[Any], proba: np.ndarray, labels: list[Any], threshold: float = 0.0) -> dict:
    """Accuracy, macro-F1 and ECE of calibrated probabilities ``proba`` (columns = ``labels``).

    Accuracy and ECE use the top label; ``fallback_rate`` is the share under ``threshold``.

    Example:
        >>> evaluate_predictions(["a", "b"], np.array([[0.9, 0.1], [0.4, 0.6]]), ["a", "b"])["accuracy"]
        1.0
    """
    top = proba.argmax(axis=1)
    confidence = proba.max(axis=1) if len(proba) else np.zeros(0)
    predicted = [labels[i] for i in top]
    correct = np.array([str(p) == str(g) for p, g in zip(predicted, gold, strict=True)])
    return {
        "accuracy": accuracy(gold, predicted),
        "macro_f1": macro_f1(gold, predicted),
        "ece": expected_calibration_error(confidence, correct),
        "mean_confidence": float(confidence.mean()) if len(confidence) else 0.0,
        "fallback_rate": float((confidence < threshold).mean()) if threshold > 0 and len(confidence) else 0.0,
    }


def measure_latency(model: TextClassifier, texts: list[str], *, n: int = 30, threads: int | None = 1) -> dict:
    """Milliseconds to classify one *new* text (no embedding cache), one call per text.

    Wall time depends on what else runs on the machine; the process CPU time beside it is
    what one thread on an idle machine would take.

    Example:
        >>> measure_latency(model, ["where is my order"], n=1)  # doctest: +SKIP
        {'latency_ms_median': 14.2, 'latency_ms_p95': 14.2, 'latency_texts': 1, 'latency_threads': 1}
    """
    from shoplm.lm import load_encoder

    sample = texts[:n]
    previous = [getattr(model, name, None) for name in ("_encoder_obj", "_cache_dir", "_threads")]
    encoder = load_encoder(model.encoder, cache=False, threads=threads)
    model.use(None, threads=threads, encoder=encoder)
    try:
        model.predict(sample[:1])  # load the encoder model: a server does this once at start
        times, cpu = [], []
        for text in sample:
            start, start_cpu = time.perf_counter(), time.process_time()
            model.predict([text])
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    finally:
        model.use(previous[1], threads=previous[2], encoder=previous[0])
    return {
        "latency_ms_median": round(float(np.median(times)), 2) if times else None,
        "latency_ms_p95": round(float(np.percentile(times, 95)), 2) if times else None,
        # CPU time of the process: what the wall time would be on an idle machine (one thread)
        "latency_cpu_ms_median": round(float(np.median(cpu)), 2) if cpu else None,
        "latency_texts": len(times),
        "latency_mean_chars": round(float(np.mean([len(t) for t in sample])), 1) if sample else 0.0,
        "latency_threads": threads,
    }


def _fit_and_score(
    params: Mapping[str, Any], train: pd.DataFrame, test: pd.DataFrame, cache_dir: Path | None, threads: int | None
) -> tuple[TextClassifier, dict]:
    model = TextClassifier(**params).use(cache_dir, threads=threads)
    start = time.perf_counter()
    model.fit(train["text"].tolist(), train["label"].tolist())
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    proba = model.predict_proba(test["text"].tolist())
    predict_seconds = time.perf_counter() - start
    gold = test["label"].tolist()
    scores = evaluate_predictions(gold, proba, model.labels, model.fallback_threshold)
    predicted = [model.labels[i] for i in proba.argmax(axis=1)]
    # Where the mistakes are: accuracy per gold label (its recall), per group, and the top confusions.
    scores["per_label"] = accuracy_by(gold, predicted, gold)
    if "group" in test.columns:
        scores["per_group"] = accuracy_by(gold, predicted, test["group"].tolist())
    scores["confusions"] = confusion_pairs(gold, predicted)
    scores.update(
        train_seconds=train_seconds,
        predict_seconds=predict_seconds,
        n_train=len(train),
        n_test=len(test),
        temperature=model.temperature_,
        l2=model.l2_,
        cv_accuracy=None if np.isnan(model.cv_accuracy_) else model.cv_accuracy_,
    )
    if model.mode == "lora":
        scores["lora_history"] = model.lora_history_  # per epoch: train loss, validation accuracy, seconds
    return model, scores


def run_classifier_benchmark(
    train: Path,
    test: Path | None = None,
    *,
    text_col: str = "text",
    label_col: str = "label",
    group_col: str | None = None,
    out: Path | None = None,
    folds: int = 0,
    holdout: float = 0.0,
    seed: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    params: Mapping[str, Any] | None = None,
    threads: int | None = 1,
    latency_texts: int = 30,
) -> dict[str, Any]:
    """Train on ``train``, score on ``test`` (or a hold-out / k folds of ``train``); return and write the report.

    The report holds ``accuracy``, ``macro_f1``, ``ece`` (15 bins), ``train_seconds`` (encoding
    included; cached texts cost a lookup), ``n_train``, ``n_test``, per-text latency of a new
    message (``latency_ms_median``/``_p95``, no cache, ``threads``), the protocol and the
    hyperparameters, accuracy per gold label (``per_label``), per ``group_col`` value of the test
    rows (``per_group``, e.g. per language) and the most frequent mistakes (``confusions``). With
    ``folds`` the metrics are means over folds (``*_std`` beside them).
    ``params`` overrides :class:`TextClassifier` hyperparameters (its ``seed`` defaults to ``seed``).

    Raises:
        InputError: a file is missing, empty or lacks a column; no protocol was chosen.

    Example:
        >>> report = run_classifier_benchmark(Path("train.tsv"), Path("dev.tsv"), text_col="text_a")  # doctest: +SKIP
        >>> sorted(report)[:3]  # doctest: +SKIP
        ['accuracy', 'cache_dir', 'ece']
    """
    train, test = Path(train), Path(test) if test is not None else None
    hyper = {"seed": seed, **(params or {})}
    TextClassifier(**hyper)  # fail on an unknown hyperparameter before reading anything
    # Groups are reported for the scored rows: the test file's, or the held-out rows of --train.
    train_frame = load_labelled(train, text_col, label_col, group_col if test is None else None)
    report: dict[str, Any] = {"train_file": str(train), "test_file": str(test) if test else None}
    if test is not None:
        if folds or holdout:
            raise InputError("give either a test file or --holdout/--folds, not both", path=test)
        test_frame = load_labelled(test, text_col, label_col, group_col)
        model, scores = _fit_and_score(hyper, train_frame, test_frame, cache_dir, threads)
        report.update(protocol="test file", **scores)
    elif holdout:
        train_rows, test_rows = stratified_holdout(train_frame["label"].tolist(), holdout, seed=seed)
        model, scores = _fit_and_score(
            hyper, train_frame.iloc[train_rows], train_frame.iloc[test_rows], cache_dir, threads
        )
        test_frame = train_frame.iloc[test_rows]
        report.update(protocol=f"stratified hold-out {holdout:g}, seed {seed}", **scores)
    elif folds:
        assignment = stratified_folds(train_frame["label"].tolist(), folds, seed=seed)
        runs = []
        for f in range(folds):
            model, scores = _fit_and_score(
                hyper, train_frame[assignment != f], train_frame[assignment == f], cache_dir, threads
            )
            runs.append(scores)
        test_frame = train_frame[assignment == folds - 1]
        report["protocol"] = f"stratified {folds}-fold cross-validation, seed {seed}"
        for key in ("accuracy", "macro_f1", "ece", "mean_confidence", "temperature", "l2"):
            values = np.array([r[key] for r in runs], dtype=float)
            report[key] = float(values.mean())
            report[f"{key}_std"] = float(values.std())
        report["train_seconds"] = float(np.mean([r["train_seconds"] for r in runs]))
        report["n_train"] = float(np.mean([r["n_train"] for r in runs]))
        report["n_test"] = int(sum(r["n_test"] for r in runs))
        report["folds"] = runs
    else:
        raise InputError("no test data: give a test file, a hold-out fraction (e.g. 0.2) or a number of folds")
    if latency_texts:
        report.update(measure_latency(model, [str(t) for t in test_frame["text"]], n=latency_texts, threads=threads))
    report.update(
        params=model.get_params(),
        encoder_model_id=model.encoder_model_id_,
        cache_dir=str(cache_dir) if cache_dir else None,
        machine={"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    )
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report
