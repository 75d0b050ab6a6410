"""The state of one support conversation between turns, typed, and its JSON form in the store.

The dialogue policy reads and changes a :class:`ConversationState`; the application floor
loads it from and saves it to the store as JSON (the keys below, unchanged since the first
version, so stored conversations keep working). Keys this version does not know are kept as
they are.

Example:
    >>> state = ConversationState.from_json('{"version": 1, "focus": "O1", "turns": 2}')
    >>> state.focus, state.turns, state.escalated
    ('O1', 2, False)
    >>> ConversationState.from_json(state.to_json()) == state
    True
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

log = logging.getLogger(__name__)

STATE_VERSION = 1
#: Customer messages (masked) kept for an escalation summary, and intents kept for the history.
KEEP_MESSAGES = 5
KEEP_INTENTS = 20
KEEP_SENTIMENTS = 3


@dataclass
class ConversationState:
    """What the assistant remembers of a conversation.

    Attributes:
        version: the state format.
        language: the conversation's language so far (``en`` or ``zh``).
        turns: customer messages answered.
        customer_messages: the newest customer messages, PII masked (for a colleague's summary).
        status: ``open`` or ``escalated``.
        pending: a proposed order change awaiting "yes" or "no": ``tool, order_id, new_address, intent``.
        awaiting: a detail asked for: ``intent, slot`` (``order_id``, ``address``, ``product``), ``order_id``.
        focus: the order the conversation is about.
        failures: unanswered turns in a row.
        intents: the intents of the turns, newest last.
        escalation: the summary handed to a colleague, once escalated.
        sentiments: the sentiment readings of the newest customer messages (None: no model call).
        extra: keys of the stored JSON this version does not know, kept unchanged.
    """

    version: int = STATE_VERSION
    language: str = "en"
    turns: int = 0
    customer_messages: list[str] = field(default_factory=list)
    status: str = "open"
    pending: dict[str, Any] | None = None
    awaiting: dict[str, Any] | None = None
    focus: str | None = None
    failures: int = 0
    intents: list[str] = field(default_factory=list)
    escalation: dict[str, Any] | None = None
    sentiments: list[dict[str, Any] | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    # -- JSON ---------------------------------------------------------------------------
    @classmethod
    def from_json(cls, text: str | None, *, conversation_id: str = "") -> ConversationState:
        """The state stored as ``text``; unreadable or non-object JSON starts afresh (logged)."""
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError:
            log.warning("conversation %s has an unreadable state; starting afresh", conversation_id)
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)} - {"extra"}
        state = cls(extra={k: v for k, v in data.items() if k not in known})
        for name in known & set(data):
            setattr(state, name, data[name])
        state._repair()
        return state

    def to_json(self) -> str:
        """The state as stored (the keys of :meth:`from_json`, plus the unknown ones kept)."""
        data = asdict(self)
        extra = data.pop("extra")
        # Absent rather than null for what is not set, as the first version stored it.
        for name in ("pending", "awaiting", "focus", "escalation"):
            if data[name] is None:
                del data[name]
        return json.dumps({**extra, **data}, ensure_ascii=False)

    def _repair(self) -> None:
        """Types a hand-edited or older state may have wrong: fall back to the defaults."""
        defaults = ConversationState()
        for name in ("turns", "failures", "version"):
            try:
                setattr(self, name, int(getattr(self, name) or 0))
            except (TypeError, ValueError):
                setattr(self, name, getattr(defaults, name))
        for name in ("customer_messages", "intents", "sentiments"):
            if not isinstance(getattr(self, name), list):
                setattr(self, name, [])
        for name in ("pending", "awaiting", "escalation"):
            if not isinstance(getattr(self, name), dict):
                setattr(self, name, None)
        if self.pending is not None and not {"tool", "order_id"} <= set(self.pending):
            self.pending = None
        if self.status not in ("open", "escalated"):
            self.status = "open"
        if not isinstance(self.language, str):
            self.language = "en"
        if self.focus is not None:
            self.focus = str(self.focus)

    # -- changes the policy makes ----------------------------------------------------------
    @property
    def escalated(self) -> bool:
        return self.status == "escalated"

    def note_customer_message(self, masked_text: str) -> None:
        """Keep the (PII-masked) message for a summary, the newest :data:`KEEP_MESSAGES`."""
        self.customer_messages = [*self.customer_messages, masked_text][-KEEP_MESSAGES:]

    def remember_intent(self, intent: str) -> None:
        self.intents = [*self.intents, intent][-KEEP_INTENTS:]

    def note_sentiment(self, reading: dict[str, Any] | None) -> dict[str, Any] | None:
        """Append this message's reading (newest :data:`KEEP_SENTIMENTS` kept); returns the previous one."""
        previous = self.sentiments[-1] if self.sentiments else None
        self.sentiments = [*self.sentiments, reading][-KEEP_SENTIMENTS:]
        return previous

    def take_pending(self) -> dict[str, Any] | None:
        """The pending change, removed from the state (it is resolved or dropped this turn)."""
        pending, self.pending = self.pending, None
        return pending

    def take_awaiting(self) -> dict[str, Any]:
        """The detail that was asked for, removed from the state (empty when none)."""
        awaiting, self.awaiting = self.awaiting, None
        return awaiting or {}
