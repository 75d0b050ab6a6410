"""The customer-service assistant's models and pure logic: intents, entities, order tools, policy
retrieval, the dialogue policy, conversation state and reply templates.

The store-bound assistant that keeps conversations is :class:`shoplm.app.assistant.Assistant`.
Names load on first access, so ``shoplm`` commands that do not chat start fast.

Its intent and sentiment classifiers are :class:`shoplm.lm.classify.TextClassifier`, the stack the
review insight shares.

Example:
    >>> from shoplm.assistant import ConversationState
    >>> ConversationState().language is None
    True
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
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
