"""The customer-service assistant of a running service: loaded at start, shared by every request.

The service loads the assistant with its models when it starts (``/readyz`` says whether it
is there). When its models are not trained yet, the assistant's routes answer 503 with the
command that trains them, and the next message after ``shoplm train assistant`` loads them
(a load, never a training). Recommendations come from the service's live recommender, read
per call, so a hot model reload reaches the assistant too.

The API names users by the shop's own id, the dashboard by the pseudonymous id the store
keeps; :meth:`LiveAssistant.reply` takes either (``pseudonymous=True`` for the latter) on the
same assistant, so the dashboard does not load a second copy of the models.

Example:
    >>> live_assistant = LiveAssistant(store, settings, live_models).load()     # doctest: +SKIP
    >>> live_assistant.reply("conv-1", "U00042", "where is order O0000123?").intent  # doctest: +SKIP
    'track_order'
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

import anyio

from shoplm.config import Settings
from shoplm.errors import ModelFileError
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve.live import LiveModels
from shoplm.store import Store

if TYPE_CHECKING:
    from shoplm.app.assistant import Assistant
    from shoplm.assistant.dialogue import AssistantTurn

log = logging.getLogger("shoplm.serve")

#: Assistant turns computed at once: they are CPU-bound, so more would only slow each other
#: down and take worker threads from the cheap routes.
MAX_CONCURRENT_TURNS = 2
#: A failed load is tried again by a message at most this often (models may be trained meanwhile).
RETRY_SECONDS = 5.0


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
    """Holds the service's :class:`~shoplm.app.assistant.Assistant`, loaded by :meth:`load`."""

    def __init__(self, store: Store, settings: Settings, live: LiveModels, *, stripes: int = 64) -> None:
        self.store = store
        self.settings = settings
        self.live = live
        self.last_error: str | None = None
        self._assistant: Assistant | None = None
        self._load_lock = threading.Lock()
        self._tried = 0.0
        # Turns of one conversation run one at a time (each reads, then writes its state); a
        # fixed set of locks picked by hash keeps memory bounded however many conversations.
        self._stripes = [threading.Lock() for _ in range(stripes)]
        self._limiter: anyio.CapacityLimiter | None = None
        self._pseudonymizer = Pseudonymizer(settings.hmac_key)

    @property
    def loaded(self) -> bool:
        return self._assistant is not None

    def limiter(self) -> anyio.CapacityLimiter:
        """Worker threads for turns (:data:`MAX_CONCURRENT_TURNS`); call it in the event loop."""
        if self._limiter is None:  # made there, on first use: anyio ties a limiter to its loop
            self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT_TURNS)
        return self._limiter

    def load(self) -> LiveAssistant:
        """Load the assistant and its models now; a missing model is remembered in ``last_error``."""
        with self._load_lock:
            if self._assistant is None:
                self._tried = time.monotonic()
                from shoplm.app.assistant import Assistant

                try:
                    self._assistant = Assistant.load(
                        self.store, self.settings, recommender=LiveRecommender(self.live).recommend
                    )
                    self.last_error = None
                    log.info("customer-service assistant loaded")
                except ModelFileError as exc:
                    self.last_error = str(exc)
                    log.warning("the assistant is not available: %s", exc)
        return self

    def get(self) -> Assistant:
        """The loaded assistant; before it could be loaded, a :class:`ModelFileError` naming the fix."""
        if self._assistant is None and time.monotonic() - self._tried >= RETRY_SECONDS:
            self.load()
        if self._assistant is None:
            raise ModelFileError(self.last_error or "the assistant is not loaded yet")
        return self._assistant

    def reply(
        self,
        conversation_id: str,
        user_id: str | None,
        text: str,
        *,
        pseudonymous: bool = False,
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
        return str(user_id).strip() if pseudonymous else self._pseudonymizer.user(user_id)


def read_conversation(store: Store, conversation_id: str, *, limit: int = 500) -> dict[str, Any] | None:
    """A stored conversation, or None when unknown: owner, status, the summary of an escalation,
    a change awaiting confirmation, and its newest ``limit`` messages oldest first.

    Messages are as the assistant stored them: PII masked, user ids pseudonymous.
    """
    stored = store.conversations.load(conversation_id)
    if stored is None:
        return None
    try:
        state = json.loads(stored.state or "{}")
    except json.JSONDecodeError:
        state = {}  # the assistant starts such a conversation afresh too
    if not isinstance(state, dict):
        state = {}
    pending = state.get("pending") if isinstance(state.get("pending"), dict) else None
    return {
        "conversation_id": stored.conversation_id,
        "user_id": stored.user_id or None,
        "channel": stored.channel,
        "status": stored.status,
        "started_ms": stored.started_ms,
        "escalation": state.get("escalation") if isinstance(state.get("escalation"), dict) else None,
        "pending": {"tool": str(pending.get("tool", "")), "order_id": pending.get("order_id")} if pending else None,
        "messages": store.conversations.messages(conversation_id, limit=limit),
    }
