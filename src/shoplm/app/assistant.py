"""The customer-service assistant bound to a shop's store: conversations kept, orders changed, one turn at a time.

:class:`Assistant` loads everything it needs once, in :meth:`Assistant.load` (the models, the
encoder, the policy passages, the catalog for product questions, and by default the live
recommender), then answers with :meth:`Assistant.reply`: it reads the conversation's state
from the store, lets the :class:`~shoplm.assistant.policy.DialoguePolicy` decide the turn, and
saves the new state and both messages (PII masked, user ids pseudonymous) in one transaction,
so a restart loses nothing. No exception reaches the customer: it is logged and answered with
an apology.

Example:
    >>> from shoplm.config import Settings                             # doctest: +SKIP
    >>> from shoplm.store import Store                                 # doctest: +SKIP
    >>> settings = Settings(data_dir="shop-data")                      # doctest: +SKIP
    >>> bot = Assistant.load(Store.open(settings.database_url), settings)  # doctest: +SKIP
    >>> bot.reply("c1", "U00042", "我的订单 O0000123 到哪了？").text      # doctest: +SKIP
    '您的订单 O0000123 已发货。下单日期：2026-03-01 ...'
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoplm.assistant.dialogue import MAX_CHARS, Action, AssistantTurn
from shoplm.assistant.entities import detect_language
from shoplm.assistant.models import CATALOG_COLUMNS, AssistantModels
from shoplm.assistant.policy import DialoguePolicy, Recommend
from shoplm.assistant.state import ConversationState
from shoplm.assistant.tools import OrderTools, ReturnPolicy
from shoplm.config import Settings
from shoplm.errors import ShoplmError
from shoplm.ingest.pseudonymize import Pseudonymizer, mask_pii
from shoplm.store import Store

if TYPE_CHECKING:
    from shoplm.assistant.retrieval import PolicyIndex
    from shoplm.lm import TextEncoder, TextGenerator
    from shoplm.lm.classify.classifier import TextClassifier

log = logging.getLogger(__name__)

#: Event types that count as looking at an item, and how many newest events are searched for one.
VIEW_KINDS = frozenset({"view", "click", "add_to_cart"})
LAST_VIEWED_WINDOW = 20


class Assistant:
    """The assistant of one shop: :meth:`load` it once, then :meth:`reply` to each message.

    Args:
        store: the shop's store (conversations, orders).
        settings: the shop's settings (pseudonymization key).
        models: the loaded models (see :meth:`load`).
        recommender: a ``recommend`` callable for suggestions (None: nearest items by text).
        channel: the channel new conversations are stored with.
        policy_options: ``intent_threshold``, ``max_failures``, ``negative_threshold`` of the policy.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        models: AssistantModels,
        *,
        recommender: Recommend | None = None,
        channel: str = "assistant",
        max_chars: int = MAX_CHARS,
        **policy_options: Any,
    ) -> None:
        self.store = store
        self.settings = settings
        self.models = models
        self.channel = channel
        self.max_chars = max_chars
        self.pseudonymizer = Pseudonymizer(settings.hmac_key)
        returns = ReturnPolicy(
            days=settings.assistant.return_days,
            excluded_categories=tuple(settings.assistant.return_excluded_categories),
        )
        self.tools = OrderTools(store.orders, return_policy=returns, category_of=self._category_of)
        self.policy = DialoguePolicy(
            models, self.tools, recommender=recommender, viewed=self.last_viewed, **policy_options
        )

    @classmethod
    def load(
        cls,
        store: Store,
        settings: Settings,
        *,
        classifier: TextClassifier | None = None,
        model_path: str | Path | None = None,
        sentiment: TextClassifier | None = None,
        sentiment_path: str | Path | None = None,
        encoder: TextEncoder | None = None,
        generator: TextGenerator | None = None,
        policies_dir: str | Path | None = None,
        policy_index: PolicyIndex | None = None,
        recommender: Recommend | bool | None = True,
        product_threshold: float = 0.86,
        **options: Any,
    ) -> Assistant:
        """Load every part now and return the assistant (parts given ready are used as they are).

        Args:
            store, settings: the shop.
            classifier, model_path, sentiment, sentiment_path, encoder, generator, policies_dir,
                policy_index, product_threshold: see :meth:`AssistantModels.load`.
            recommender: a ``recommend`` callable; True (default) loads the shop's live recommender
                when one is trained; None or False: suggestions by text similarity.
            options: :class:`Assistant` options (``channel``, ``max_chars``, policy thresholds).

        Raises:
            ModelFileError: the intent or sentiment model is not saved (run ``shoplm train assistant``).
        """
        from shoplm.app.jobs import load_item_embeddings

        base = encoder
        if base is None:
            from shoplm.lm import load_encoder

            base = load_encoder(settings)
        catalog = store.items.catalog(CATALOG_COLUMNS)
        item_ids = item_vectors = None
        with contextlib.suppress(ShoplmError):  # no embeddings yet: a small catalog is encoded on load
            item_ids, item_vectors = load_item_embeddings(settings, base.model_id)
        models = AssistantModels.load(
            settings,
            catalog=catalog,
            item_ids=item_ids,
            item_vectors=item_vectors,
            classifier=classifier,
            model_path=model_path,
            sentiment=sentiment,
            sentiment_path=sentiment_path,
            encoder=base,
            generator=generator,
            policies_dir=policies_dir,
            policy_index=policy_index,
            product_threshold=product_threshold,
        )
        return cls(store, settings, models, recommender=_recommender(store, settings, recommender), **options)

    def _category_of(self, item_id: str) -> str:
        return str(self.models.catalog.get(item_id, {}).get("category") or "")

    def last_viewed(self, user_key: str) -> str | None:
        """The item the user (pseudonymous id) looked at last: their newest view, click or cart event."""
        for item_id, kind in reversed(self.store.events.history(user_key, limit=LAST_VIEWED_WINDOW)):
            if kind in VIEW_KINDS:
                return item_id
        return None

    # -- the main call --------------------------------------------------------------------
    def user_key(self, user_id: str | None, *, pseudonymous: bool = False) -> str:
        """The pseudonymous id a conversation of ``user_id`` is stored under (empty for a guest)."""
        if not user_id or not str(user_id).strip():
            return ""
        return str(user_id).strip() if pseudonymous else self.pseudonymizer.user(user_id)

    def reply(
        self,
        conversation_id: str,
        user_id: str | None,
        text: str | None,
        *,
        pseudonymous: bool = False,
    ) -> AssistantTurn:
        """Answer one customer message of a conversation (created on its first message).

        Args:
            conversation_id: the conversation; a new id starts one.
            user_id: the shop's own user id (pseudonymized here), or with ``pseudonymous`` the id
                the store keeps; None is a guest, who can ask questions but has no orders.
            text: the message (NUL removed, cut to ``max_chars``).

        Returns:
            The turn. In another user's conversation nothing is answered or stored: the turn
            carries the action ``conversation: not_allowed``.
        """
        started = time.perf_counter()
        user_key = self.user_key(user_id, pseudonymous=pseudonymous)
        raw = "" if text is None else str(text)
        truncated = len(raw) > self.max_chars
        message = raw.replace("\x00", " ")[: self.max_chars]
        state = ConversationState()
        try:
            stored = self.store.conversations.load(conversation_id)
            if stored is not None and stored.user_id != user_key:
                # Another user's conversation: answer nothing from it, store nothing in it.
                turn = self.policy.failed_turn(detect_language(message), tool="conversation", outcome="not_allowed")
                turn.seconds = time.perf_counter() - started
                return turn
            if stored is not None:
                state = ConversationState.from_json(stored.state, conversation_id=conversation_id)
                if stored.status == "escalated":
                    state.status = "escalated"
            turn = self.policy.turn(conversation_id, state, user_key, message)
            if truncated:
                notice = self.policy.act("truncated", turn.language)
                turn.text = notice + ("" if turn.language == "zh" else " ") + turn.text
                turn.actions.append(Action("input", "truncated"))
        except Exception:
            log.exception("assistant turn failed in conversation %s", conversation_id)
            turn = self.policy.failed_turn(detect_language(message, default=state.language))
        try:
            self.store.conversations.save_turn(
                conversation_id,
                user_id=user_key,
                channel=self.channel,
                state=state.to_json(),
                status="escalated" if state.escalated else "open",
                messages=[
                    ("customer", mask_pii(message), turn.intent),
                    ("assistant", mask_pii(turn.text), turn.intent),
                ],
                now_ms=int(time.time() * 1000),
            )
        except Exception:
            log.exception("could not store turn of conversation %s", conversation_id)
        turn.seconds = time.perf_counter() - started
        return turn

    def state(self, conversation_id: str) -> dict[str, Any]:
        """The stored dialogue state of a conversation as JSON data (empty when unknown)."""
        stored = self.store.conversations.load(conversation_id)
        return json.loads(stored.state) if stored is not None and stored.state else {}

    def status(self, conversation_id: str) -> str | None:
        """``open`` or ``escalated`` (None when the conversation is unknown)."""
        stored = self.store.conversations.load(conversation_id)
        return stored.status if stored is not None else None


def _recommender(store: Store, settings: Settings, given: Recommend | bool | None) -> Recommend | None:
    if given is not True:
        return given or None
    from shoplm.app.recommender import ShopRecommender

    try:
        return ShopRecommender.load(store, settings).recommend
    except Exception as exc:  # no trained recommender yet (or a broken one): the assistant still answers
        log.info("no recommender (%s); suggestions by text similarity", exc)
        return None
