"""The customer-service assistant's models and pure logic: intents, entities, order tools, policy
retrieval, the dialogue policy, conversation state and reply templates.

The store-bound assistant that keeps conversations is :class:`shoplm.app.assistant.Assistant`.
Names load on first access, so ``shoplm`` commands that do not chat start fast.

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
    "AssistantTurn": "shoplm.assistant.dialogue",
    "AssistantModels": "shoplm.assistant.models",
    "ConversationState": "shoplm.assistant.state",
    "DialoguePolicy": "shoplm.assistant.policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
