"""The text-classifier stack every domain shares: frozen (or LoRA-tuned) e5 embeddings plus
character n-grams, one calibrated softmax head, and the loaders and metrics its benchmarks use.

The assistant classifies intents with it, the review insight classifies sentiment and aspects
with it; it lives on the language-model floor so that both reach it without importing each other.

Example:
    >>> from shoplm.lm.classify import TextClassifier
    >>> clf = TextClassifier(fallback_threshold=0.5).fit(
    ...     ["where is my parcel", "我的快递到哪了", "refund please", "我要退款"],
    ...     ["track_order", "track_order", "refund", "refund"])
    >>> clf.predict(["我的包裹呢"])[0].label
    'track_order'
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FALLBACK": "shoplm.lm.classify.classifier",
    "Prediction": "shoplm.lm.classify.classifier",
    "TextClassifier": "shoplm.lm.classify.classifier",
    "load_labelled": "shoplm.lm.classify.data",
    "read_label_text_lines": "shoplm.lm.classify.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Names load on first access: importing the package must not pull in scipy and torch.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
