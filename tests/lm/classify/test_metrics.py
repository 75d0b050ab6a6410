"""Classification metrics and splits, checked against scikit-learn where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.lm.classify.heads import fit_temperature, softmax
from shoplm.lm.classify.metrics import (
    accuracy,
    expected_calibration_error,
    macro_f1,
    stratified_folds,
    stratified_holdout,
)


def test_macro_f1_by_hand() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "fallback"]
    # F1: a = 2*2/(2*2+0+1) = 0.8, b = 2/(2+1+1) = 0.5, c = 0, fallback = 0 (predicted, never true)
    assert macro_f1(gold, predicted) == pytest.approx((0.8 + 0.5) / 4)
    assert accuracy(gold, predicted) == pytest.approx(3 / 6)
    assert macro_f1([1, 0], ["1", "0"]) == 1.0  # labels compare as text


def test_ece() -> None:
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    assert expected_calibration_error(np.array([0.6] * 10), np.array([True] * 6 + [False] * 4)) == pytest.approx(0)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([True] * 5 + [False] * 5)) == pytest.approx(0.4)


def test_stratified_holdout_keeps_class_shares() -> None:
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 2
    train, test = stratified_holdout(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(82))
    held = [labels[i] for i in test]
    assert (held.count("a"), held.count("b"), held.count("c")) == (10, 6, 1)
    assert stratified_holdout(labels, 0.2, seed=0)[1].tolist() == test.tolist()  # seeded
    assert stratified_holdout(labels, 0.2, seed=1)[1].tolist() != test.tolist()


def test_stratified_folds_balance() -> None:
    labels = ["a"] * 23 + ["b"] * 7
    fold = stratified_folds(labels, 5, seed=0)
    sizes = np.bincount(fold, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    for f in range(5):
        assert 4 <= sum(1 for i in np.flatnonzero(fold == f) if labels[i] == "a") <= 5


def test_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    true_logits = rng.normal(size=(3000, 3)) + 2.0 * np.eye(3)[y]
    # Labels drawn from softmax(true_logits); the model reports logits 3x too sharp.
    p = softmax(true_logits)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(3.0 * true_logits, y) == pytest.approx(3.0, rel=0.15)
