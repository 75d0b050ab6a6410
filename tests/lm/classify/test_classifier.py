"""TextClassifier: the estimator contract, learning zh+en intents, fallback, calibration, odd inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError, NotFittedError
from shoplm.lm.classify import FALLBACK, Prediction, TextClassifier, load_labelled
from tests.assistant.synthetic import NONSENSE, REVIEWS, TEST_LABELS, TEST_TEXTS, TRAIN_LABELS, TRAIN_TEXTS
from tests.estimator_contract import EstimatorContract, assert_params_round_trip


@pytest.fixture(scope="module")
def intents(embedding_cache: Path) -> TextClassifier:
    return TextClassifier(fallback_threshold=0.5).use(embedding_cache, threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)


class TestContract(EstimatorContract):
    cache_dir: Path

    @pytest.fixture(autouse=True)
    def _cache(self, embedding_cache: Path) -> None:
        type(self).cache_dir = embedding_cache

    def make_estimator(self) -> TextClassifier:
        return TextClassifier(calibration_folds=3, ngram_features=500, l2=1e-3, max_iter=100)

    def fit_estimator(self, estimator: TextClassifier) -> TextClassifier:  # type: ignore[override]
        return estimator.use(self.cache_dir, threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)

    def probe(self, estimator: TextClassifier) -> np.ndarray:  # type: ignore[override]
        estimator.use(self.cache_dir, threads=1)
        return np.column_stack([estimator.predict_proba(TEST_TEXTS), estimator.similarity(TEST_TEXTS)])


def test_params_round_trip() -> None:
    clf = TextClassifier(mode="both", head="mlp", l2=0.01, fallback_threshold=0.4)
    assert_params_round_trip(clf, mode="both", head="mlp", l2=0.01, fallback_threshold=0.4)


def test_learns_chinese_and_english_intents(intents: TextClassifier) -> None:
    predictions = intents.predict(TEST_TEXTS)
    correct = sum(p.label == gold for p, gold in zip(predictions, TEST_LABELS, strict=True))
    assert correct / len(TEST_LABELS) >= 11 / 12
    assert intents.labels == sorted(set(TRAIN_LABELS))
    first = predictions[0]
    assert isinstance(first, Prediction) and len(first.top) == 3
    assert first.top[0][1] >= first.top[1][1] >= first.top[2][1]


def test_nonsense_falls_back(intents: TextClassifier) -> None:
    for prediction in intents.predict(NONSENSE):
        assert prediction.label == FALLBACK, prediction
    # With fallback off (threshold 0) every text gets a real label, the domain check only informs.
    answered = intents.predict(NONSENSE, threshold=0.0)
    assert all(p.label != FALLBACK for p in answered)
    assert not all(p.in_domain for p in answered)


def test_probabilities_are_calibrated_probabilities(intents: TextClassifier) -> None:
    proba = intents.predict_proba(TEST_TEXTS + NONSENSE)
    assert proba.shape == (len(TEST_TEXTS) + len(NONSENSE), 6)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert intents.temperature_ > 0
    # 36 training texts all classified right do not prove 100% accuracy: no certainty claimed on average.
    assert proba.max(axis=1)[: len(TEST_TEXTS)].mean() < 0.99
    assert all(0.0 <= p.confidence <= 1.0 for p in intents.predict(TEST_TEXTS))


def test_empty_and_very_long_texts(intents: TextClassifier, embedding_cache: Path) -> None:
    # max_chars is small here only to keep the test fast; the default cuts at 2,000 characters.
    clf = TextClassifier(max_chars=300, ngram_features=200, calibration_folds=0, l2=1e-3)
    clf.use(embedding_cache, threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)
    long_text = "where is my order? " * 800  # 15,200 characters
    predictions = clf.predict(["", "   ", long_text, None])  # type: ignore[list-item]
    assert len(predictions) == 4 and all(0 <= p.confidence <= 1 for p in predictions)
    assert len(TextClassifier()._prepare([long_text])[0]) == 2000
    assert clf.predict([]) == []


def test_integer_labels_come_back_as_integers(embedding_cache: Path) -> None:
    texts, labels = zip(*REVIEWS, strict=True)
    clf = TextClassifier(calibration_folds=3).use(embedding_cache, threads=1).fit(list(texts), list(labels))
    assert clf.labels == [0, 1]
    predicted = clf.predict(["坏了，很失望", "great, love it"])
    assert [p.label for p in predicted] == [0, 1]


def test_fits_a_frame_from_load_labelled(tmp_path: Path, embedding_cache: Path) -> None:
    path = tmp_path / "intents.tsv"
    pd.DataFrame({"utterance": TRAIN_TEXTS, "intent": TRAIN_LABELS}).to_csv(path, sep="\t", index=False)
    frame = load_labelled(path, "utterance", "intent")
    clf = TextClassifier(calibration_folds=0, l2=1e-3).use(embedding_cache, threads=1).fit(frame)
    assert clf.n_train_ == len(TRAIN_TEXTS)
    with pytest.raises(InputError, match="'label'"):
        TextClassifier().fit(pd.DataFrame({"text": ["a"]}))


def test_bad_training_input() -> None:
    with pytest.raises(InputError, match="2 texts but 1 labels"):
        TextClassifier().fit(["a", "b"], ["x"])
    clf = TextClassifier().use(encoder=_NeverEncoder())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at least 2 labels"):
        clf.fit(["a", "b"], ["x", "x"])
    assert not clf.is_fitted
    with pytest.raises(TypeError, match="list of texts"):
        TextClassifier().fit("where is my order", ["track"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="head"):
        TextClassifier(head="svm").fit(["a", "b"], ["x", "y"])


def _small_lora(**overrides: object) -> TextClassifier:
    # One adapted block, one short epoch: enough to exercise the whole path in seconds.
    params: dict[str, object] = {
        "mode": "lora", "lora_layers": 1, "lora_epochs": 1, "lora_batch_size": 8, "lora_max_tokens": 48,
        "lora_valid": 0.25, "ngram_features": 300, "l2": 1e-3, "max_iter": 100,
    }  # fmt: skip
    return TextClassifier(**{**params, **overrides})  # type: ignore[arg-type]


class TestLoraContract(EstimatorContract):
    """The fine-tuned classifier keeps the contract: its adapters are saved and served again."""

    probe_atol = 1e-5

    def make_estimator(self) -> TextClassifier:
        return _small_lora()

    def fit_estimator(self, estimator: TextClassifier) -> TextClassifier:  # type: ignore[override]
        return estimator.use(threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)

    def probe(self, estimator: TextClassifier) -> np.ndarray:  # type: ignore[override]
        return np.column_stack([estimator.use(threads=1).predict_proba(TEST_TEXTS), estimator.similarity(TEST_TEXTS)])


@pytest.fixture(scope="module")
def lora_intents() -> TextClassifier:
    return _small_lora(lora_epochs=2).use(threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)


def test_lora_mode_fine_tunes_and_classifies(lora_intents: TextClassifier, tmp_path: Path) -> None:
    predictions = lora_intents.predict(TEST_TEXTS)
    correct = sum(p.label == gold for p, gold in zip(predictions, TEST_LABELS, strict=True))
    assert correct / len(TEST_LABELS) >= 10 / 12
    assert [h["epoch"] for h in lora_intents.lora_history_] == [1.0, 2.0]
    # Only the adapters of the top block are stored, not the 118M base weights.
    assert lora_intents.lora_ and all(".layer.11." in name for name in lora_intents.lora_)
    assert sum(a.nbytes for a in lora_intents.lora_.values()) < 2_000_000
    path = lora_intents.save(tmp_path / "lora")
    assert TextClassifier.load(path).lora_history_ == lora_intents.lora_history_
    # The merged, exported encoder is saved with it: a fresh process predicts without torch.
    probe = (
        "import sys, json; from shoplm.lm.classify.classifier import TextClassifier; "
        f"clf = TextClassifier.load({str(path)!r}).use(threads=1); "
        f"p = clf.predict_proba({TEST_TEXTS[:2]!r}); "
        "print(json.dumps([p.tolist(), 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    probabilities, imported_torch = json.loads(done.stdout.strip().splitlines()[-1])
    assert not imported_torch
    np.testing.assert_allclose(probabilities, lora_intents.predict_proba(TEST_TEXTS[:2]), atol=1e-5)


def test_lora_classifier_embeds_with_its_own_encoder(lora_intents: TextClassifier) -> None:
    # A server injecting its shared (frozen) encoder must not replace the fine-tuned one.
    before = lora_intents.predict_proba(TEST_TEXTS[:2])
    lora_intents.use(encoder=_NeverEncoder(), threads=1)  # type: ignore[arg-type]
    np.testing.assert_allclose(lora_intents.predict_proba(TEST_TEXTS[:2]), before, atol=1e-6)
    assert lora_intents.text_encoder().model_id.startswith("e5-torch/")


def test_lora_mode_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="fine-tunes multilingual-e5-small"):
        TextClassifier(mode="lora", encoder="minilm").fit(["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="lora_valid"):
        TextClassifier(mode="lora", lora_valid=0.7).fit(["a", "b"], ["x", "y"])
    with pytest.raises(NotFittedError):
        TextClassifier(mode="lora").predict(["where is my order"])


def test_settings_give_the_cache_directory(settings, embedding_cache: Path) -> None:  # type: ignore[no-untyped-def]
    clf = TextClassifier().use(settings)
    assert clf._cache_dir == settings.cache_dir / "embeddings"


class _NeverEncoder:
    """An encoder that fails the test if called: input checks must come first."""

    model_id = "never"

    def encode(self, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the encoder should not be called")
