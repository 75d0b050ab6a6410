"""Classification metrics and stratified splits, in numpy (no scikit-learn at run time).

Example:
    >>> accuracy(["a", "b", "b"], ["a", "b", "a"])
    0.6666666666666666
    >>> round(macro_f1(["a", "b", "b"], ["a", "b", "a"]), 3)
    0.667
    >>> stratified_holdout(["x"] * 5 + ["y"] * 5, 0.2, seed=0)[1].size
    2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "accuracy",
    "accuracy_by",
    "confusion_pairs",
    "expected_calibration_error",
    "macro_f1",
    "stratified_folds",
    "stratified_holdout",
]


def _as_str(values: Sequence[object]) -> np.ndarray:
    # Labels compare as text, so 1 (int from a TSV) and "1" are the same class.
    return np.asarray([str(v) for v in values], dtype=object)


def accuracy(gold: Sequence[object], predicted: Sequence[object]) -> float:
    """Fraction of predictions equal to the gold label.

    Example:
        >>> accuracy([1, 0], ["1", "1"])
        0.5
    """
    g, p = _as_str(gold), _as_str(predicted)
    if len(g) != len(p):
        raise ValueError(f"{len(g)} gold labels but {len(p)} predictions")
    return float((g == p).mean()) if len(g) else 0.0


def macro_f1(gold: Sequence[object], predicted: Sequence[object]) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``gold`` or ``predicted``.

    A class never predicted and never true does not count; a prediction outside the gold classes
    (e.g. ``"fallback"``) counts as a class with F1 = 0, as scikit-learn's ``f1_score`` does.

    Example:
        >>> macro_f1(["a", "a", "b"], ["a", "a", "b"])
        1.0
    """
    g, p = _as_str(gold), _as_str(predicted)
    if len(g) != len(p):
        raise ValueError(f"{len(g)} gold labels but {len(p)} predictions")
    scores = []
    for label in sorted(set(g) | set(p)):
        tp = float(np.sum((g == label) & (p == label)))
        fp = float(np.sum((g != label) & (p == label)))
        fn = float(np.sum((g == label) & (p != label)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def accuracy_by(gold: Sequence[object], predicted: Sequence[object], groups: Sequence[object]) -> dict[str, dict]:
    """Accuracy and size of each group (a language, a gold label), groups sorted by name.

    Example:
        >>> accuracy_by(["a", "b", "a"], ["a", "a", "a"], ["en", "en", "zh"])
        {'en': {'accuracy': 0.5, 'n': 2}, 'zh': {'accuracy': 1.0, 'n': 1}}
    """
    g, p, k = _as_str(gold), _as_str(predicted), _as_str(groups)
    if not len(g) == len(p) == len(k):
        raise ValueError(f"{len(g)} gold labels, {len(p)} predictions and {len(k)} groups")
    return {
        str(name): {"accuracy": float((g[k == name] == p[k == name]).mean()), "n": int((k == name).sum())}
        for name in sorted(set(k))
    }


def confusion_pairs(gold: Sequence[object], predicted: Sequence[object], *, top: int = 15) -> list[dict]:
    """The most frequent (gold, predicted) mistakes, most frequent first (ties by name).

    Example:
        >>> confusion_pairs(["a", "a", "b"], ["b", "b", "b"])
        [{'gold': 'a', 'predicted': 'b', 'count': 2}]
    """
    g, p = _as_str(gold), _as_str(predicted)
    if len(g) != len(p):
        raise ValueError(f"{len(g)} gold labels but {len(p)} predictions")
    counts: dict[tuple[str, str], int] = {}
    for gold_label, predicted_label in zip(g[g != p], p[g != p], strict=True):
        counts[(gold_label, predicted_label)] = counts.get((gold_label, predicted_label), 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"gold": a, "predicted": b, "count": n} for (a, b), n in ranked]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size.

    Example:
        >>> expected_calibration_error(np.array([0.9, 0.9]), np.array([True, False]))
        0.4
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return 0.0
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of 0 goes to the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / confidence.size)


def _shuffled_by_class(labels: Sequence[object], seed: int) -> list[np.ndarray]:
    y = _as_str(labels)
    rng = np.random.default_rng(seed)
    groups = []
    for label in sorted(set(y)):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        groups.append(rows)
    return groups


def stratified_holdout(labels: Sequence[object], fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` with ``fraction`` of every class held out (rounded).

    Every class with at least two rows keeps at least one row on each side.

    Example:
        >>> train, test = stratified_holdout(["a"] * 10 + ["b"] * 10, 0.2, seed=1)
        >>> len(train), len(test)
        (16, 4)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    train, test = [], []
    for rows in _shuffled_by_class(labels, seed):
        n_test = round(len(rows) * fraction)
        if len(rows) >= 2:
            n_test = min(max(n_test, 1), len(rows) - 1)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_folds(labels: Sequence[object], folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold number (0..folds-1) of every row, each class dealt round-robin over the folds.

    Example:
        >>> stratified_folds(["a"] * 4 + ["b"] * 2, 2, seed=0).tolist().count(0)
        3
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    fold = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for rows in _shuffled_by_class(labels, seed):
        # Start each class where the previous one stopped, so small classes do not all land in fold 0.
        fold[rows] = (np.arange(len(rows)) + offset) % folds
        offset = (offset + len(rows)) % folds
    return fold
