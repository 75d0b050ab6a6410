"""The customer-service assistant of a running service: built once, on first use, shared by every request.

The first message loads what the assistant needs (intent and sentiment models, encoder,
policy passages, item vectors for product linking); later turns reuse it. Recommendations come from the
service's live recommender, read per call, so a hot model reload reaches the assistant too.

The API names users by the shop's own id, the dashboard by the pseudonymous id the store
keeps; :meth:`LiveAssistant.reply` takes either (``pseudonymous=True`` for the latter) on the
same assistant, so the dashboard does not load a second copy of the models.

Example:
    >>> live_assistant = LiveAssistant(store, settings, live_models)     # doctest: +SKIP
    >>> live_assistant.reply("conv-1", "U00042", "where is order O0000123?").intent  # doctest: +SKIP
    'track_order'
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import select

from shoplm.config import Settings
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve.live import LiveModels
from shoplm.store import Store
from shoplm.store.schema import conversations as conversations_table
from shoplm.store.schema import messages as messages_table

if TYPE_CHECKING:
    from shoplm.assistant.dialogue import Assistant, AssistantTurn

log = logging.getLogger("shoplm.serve")

#: Assistant turns computed at once: they are CPU-bound, so more would only slow each other
#: down and take worker threads from the cheap routes.
MAX_CONCURRENT_TURNS = 2


#: The assistant's parts loaded on first use (those its version has).
_LAZY_PARTS = ("classifier", "sentiment", "policy_index", "extractor", "catalog")


class LiveRecommender:
    """The assistant's recommender: the service's live one at the time of each call.

    Example:
        >>> LiveRecommender(type("Live", (), {"current": None})()).recommend("u_1", scene="search")
        []
    """

    def __init__(self, live: LiveModels) -> None:
        self.live = live

    def recommend(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Recommend with the live models; an empty list before the first training."""
        shop = self.live.current
        if shop is None:
            return []  # the assistant then suggests items by text similarity
        return shop.recommend(*args, **kwargs)  # type: ignore[no-any-return]


class LiveAssistant:
    """Holds the service's :class:`~shoplm.assistant.dialogue.Assistant`, built on first use."""

    def __init__(self, store: Store, settings: Settings, live: LiveModels, *, stripes: int = 64) -> None:
        self.store = store
        self.settings = settings
        self.live = live
        self._assistant: Assistant | None = None
        self._build_lock = threading.Lock()
        # Turns of one conversation run one at a time (each reads, then writes its state); a
        # fixed set of locks picked by hash keeps memory bounded however many conversations.
        self._stripes = [threading.Lock() for _ in range(stripes)]
        self._limiter: anyio.CapacityLimiter | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        """Worker threads for turns (:data:`MAX_CONCURRENT_TURNS`); call it in the event loop."""
        if self._limiter is None:  # made there, on first use: anyio ties a limiter to its loop
            self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT_TURNS)
        return self._limiter

    def get(self) -> Assistant:
        """The assistant, built (and its models loaded) by the first caller; the others wait for it."""
        if self._assistant is None:
            with self._build_lock:
                if self._assistant is None:
                    self._assistant = self._build()
        return self._assistant

    def _build(self) -> Assistant:
        from shoplm.assistant.dialogue import Assistant

        log.info("loading the customer-service assistant")
        bot = Assistant(self.store, self.settings, recommender=LiveRecommender(self.live))
        # Load every lazily loaded part now, under the build lock: concurrent first turns
        # would otherwise each load (or train, when none is saved) their own copy.
        for part in _LAZY_PARTS:
            if isinstance(getattr(type(bot), part, None), property):
                getattr(bot, part)
        return bot

    def reply(
        self, conversation_id: str, user_id: str | None, text: str, *, pseudonymous: bool = False
    ) -> AssistantTurn:
        """One turn of ``conversation_id`` (blocking: call it from a worker thread).

        ``user_id`` is the shop's own id, or with ``pseudonymous`` the store's pseudonymous one.
        """
        bot = self.get()
        stripe = self._stripes[zlib.crc32(conversation_id.encode("utf-8")) % len(self._stripes)]
        with stripe:
            return bot.reply(conversation_id, user_id, text, pseudonymous=pseudonymous)

    def user_key(self, user_id: str | None, *, pseudonymous: bool = False) -> str:
        """The pseudonymous id a conversation of ``user_id`` is stored under (empty for a guest)."""
        if not user_id or not str(user_id).strip():
            return ""
        return str(user_id).strip() if pseudonymous else Pseudonymizer(self.settings.hmac_key).user(user_id)


def read_conversation(store: Store, conversation_id: str, *, limit: int = 500) -> dict[str, Any] | None:
    """A stored conversation, or None when unknown: owner, status, the summary of an escalation,
    a change awaiting confirmation, and its newest ``limit`` messages oldest first.

    Messages are as the assistant stored them: PII masked, user ids pseudonymous.
    """
    c = conversations_table.c
    m = messages_table.c
    with store.engine.connect() as conn:
        row = conn.execute(
            select(c.conversation_id, c.user_id, c.channel, c.status, c.started_ms, c.state).where(
                c.conversation_id == conversation_id
            )
        ).first()
        if row is None:
            return None
        rows = conn.execute(
            select(m.role, m.text, m.intent, m.ts_ms)
            .where(m.conversation_id == conversation_id)
            .order_by(m.ts_ms.desc(), m.message_id.desc())
            .limit(limit)
        ).fetchall()
    try:
        state = json.loads(row.state or "{}")
    except json.JSONDecodeError:
        state = {}  # the assistant starts such a conversation afresh too
    if not isinstance(state, dict):
        state = {}
    pending = state.get("pending") if isinstance(state.get("pending"), dict) else None
    return {
        "conversation_id": row.conversation_id,
        "user_id": row.user_id,
        "channel": row.channel or "",
        "status": row.status or "open",
        "started_ms": int(row.started_ms),
        "escalation": state.get("escalation") if isinstance(state.get("escalation"), dict) else None,
        "pending": {"tool": str(pending.get("tool", "")), "order_id": pending.get("order_id")} if pending else None,
        "messages": [
            {"role": r.role, "text": r.text, "intent": r.intent or "", "ts_ms": int(r.ts_ms)} for r in reversed(rows)
        ],
    }
