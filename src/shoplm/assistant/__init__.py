"""The customer-service assistant: intents, entities, order tools, policy retrieval, dialogue.

Heavy parts load on first use, so ``shoplm`` commands that do not chat start fast.

Example:
    >>> from shoplm.assistant import TextClassifier
    >>> clf = TextClassifier(fallback_threshold=0.5).fit(
    ...     ["where is my parcel", "我的快递到哪了", "refund please", "我要退款"],
    ...     ["track_order", "track_order", "refund", "refund"])
    >>> clf.predict(["我的包裹呢"])[0].label
    'track_order'
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FALLBACK": "shoplm.assistant.classifier",
    "Prediction": "shoplm.assistant.classifier",
    "TextClassifier": "shoplm.assistant.classifier",
    "load_labelled": "shoplm.assistant.data",
    "read_label_text_lines": "shoplm.assistant.data",
    "Assistant": "shoplm.assistant.dialogue",
    "AssistantTurn": "shoplm.assistant.dialogue",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
