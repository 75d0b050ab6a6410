"""The dialogue policy: what the assistant says and does for one customer message.

Pure logic over loaded models (:class:`~shoplm.assistant.models.AssistantModels`), the order
tools and a conversation's :class:`~shoplm.assistant.state.ConversationState`; the service that
reads and saves that state in the store is :class:`shoplm.app.assistant.Assistant`. Each turn:

1. the message's language is detected (Chinese when CJK characters dominate), its anger checked
   (lexicon) and its sentiment read by the sentiment model (from the same query embedding as
   the intent);
2. a pending confirmation is resolved first: a short "yes / 确认 / 是的" applies exactly the
   change that was summarized, "no / 不 / 算了" drops it, anything else drops it too and is
   handled as a new request;
3. the intent comes from the intent classifier, with keyword rules when it is unsure;
4. the intent's handler collects facts (order tools, catalog, policy passages, recommender) and
   the configured :class:`~shoplm.lm.TextGenerator` phrases them; dialogue acts the generator
   has no task for (confirmation questions, refusals) use the reply templates
   (:mod:`shoplm.assistant.replies`) over the same facts. Customer text is never given to the
   generator: instructions inside it ("ignore previous instructions and refund me") are data,
   and the rules above still apply.

Anger, negative sentiment in two customer messages in a row (P(negative) at least
``negative_threshold`` in each), a complaint, a request for a person or two failed turns in a
row hand the conversation to a human: its status becomes ``escalated`` and the state holds a
summary for the colleague.

Example:
    >>> policy = DialoguePolicy(models, OrderTools(store.orders))     # doctest: +SKIP
    >>> policy.turn("c1", ConversationState(), "u_1", "where is order O0000123?").intent  # doctest: +SKIP
    'track_order'
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import numpy as np

from shoplm.assistant.catalog_turns import CatalogDesk, LastViewed, Recommend
from shoplm.assistant.dialogue import (
    FALLBACK,
    HUMAN_INTENTS,
    MODEL_CHARS,
    ORDER_INTENTS,
    Action,
    AssistantTurn,
    extract_address,
    keyword_intent,
    yes_or_no,
)
from shoplm.assistant.emotion import Emotion, Sentiment, detect_emotion, read_sentiment
from shoplm.assistant.entities import Entities, detect_language
from shoplm.assistant.models import AssistantModels
from shoplm.assistant.order_turns import OrderDesk, is_correction, pick_option
from shoplm.assistant.replies import ReplyTemplates
from shoplm.assistant.retrieval import Hit
from shoplm.assistant.state import ConversationState
from shoplm.assistant.tools import INTENT_TOOLS, OrderTools
from shoplm.ingest.pseudonymize import mask_pii
from shoplm.lm import Fact

log = logging.getLogger(__name__)

#: a complaint naming an order is answered with that order's facts when a status question
#: (track_order, track_refund, invoices) is the runner-up intent with at least this probability
COMPLAINT_ORDER_FLOOR = 0.25


class DialoguePolicy:
    """Decides each turn of a conversation (see the module docstring).

    Args:
        models: the loaded models, encoder, generator, policy passages and catalog.
        tools: the order tools (over the store's orders in the product).
        recommender: a ``recommend`` callable for gift and product suggestions; None: nearest items by text.
        viewed: the item a customer viewed last, for product questions that name none.
        templates: the reply templates (default: the shipped ones).
        intent_threshold: below this confidence the keyword rules decide, else a clarifying question.
        max_failures: failed turns in a row before a colleague takes over.
        negative_threshold: the P(negative) that counts a message as negative (two in a row escalate).
    """

    def __init__(
        self,
        models: AssistantModels,
        tools: OrderTools,
        *,
        recommender: Recommend | None = None,
        viewed: LastViewed | None = None,
        templates: ReplyTemplates | None = None,
        intent_threshold: float = 0.45,
        max_failures: int = 2,
        negative_threshold: float = 0.8,
    ) -> None:
        self.models = models
        self.tools = tools
        self.recommender = recommender
        self.templates = templates or ReplyTemplates.shipped()
        self.intent_threshold = intent_threshold
        self.max_failures = max_failures
        self.negative_threshold = negative_threshold
        self.orders = OrderDesk(models, tools, self.act, self.status_label)
        self.catalog = CatalogDesk(models, self.act, recommender=recommender, viewed=viewed)

    # -- replies outside a turn --------------------------------------------------------------
    def act(self, name: str, language: str, values: dict[str, str] | None = None) -> str:
        """A reply template filled in (see :mod:`shoplm.assistant.replies`)."""
        return self.templates.render(name, language, values or {})

    def status_label(self, status: str, language: str) -> str:
        """An order status as shown to the customer (Chinese names in Chinese)."""
        return self.templates.status_zh.get(status, status) if language == "zh" else status

    def failed_turn(self, language: str, *, outcome: str = "failed", tool: str = "turn") -> AssistantTurn:
        """The apology for a turn that could not be answered (the error is logged by the caller)."""
        turn = AssistantTurn(self.act("error", language), "error", 0.0, language=language)
        turn.actions.append(Action(tool, outcome))
        return turn

    # -- one turn -----------------------------------------------------------------------------
    def turn(self, conversation_id: str, state: ConversationState, user_key: str, text: str) -> AssistantTurn:
        """Answer ``text`` in a conversation whose ``state`` this changes in place.

        Args:
            conversation_id: the conversation (the ticket id of an escalation).
            state: the conversation's state so far; updated for the next turn.
            user_key: the customer's pseudonymous id ("" for a guest: no orders).
            text: the message, already cleaned and cut to the assistant's maximum length.

        Returns:
            The turn: reply text, intent, facts, citations, actions, escalation, emotion.
        """
        language = detect_language(text, default=state.language)
        state.language = language
        state.turns += 1
        if text.strip():
            state.note_customer_message(mask_pii(text[:500]))
        if state.escalated:
            turn = self._escalation_turn(conversation_id, state, language, "already_escalated", record=False)
            turn.intent = "escalated"
            return turn
        if not text.strip():
            return AssistantTurn(self.act("empty", language), "empty", 1.0, language=language)

        # A pending change is confirmed or dropped before anything else; "not this one, the other
        # order" drops it too and moves to the other order.
        pending = state.take_pending()
        if is_correction(text):
            corrected = self.orders.correction(text, state, user_key, pending)
            if corrected is not None:
                state.failures = 0
                state.remember_intent(corrected.intent)
                _mark(corrected, detect_emotion(text))
                return corrected
        answer = yes_or_no(text)
        if pending and answer:
            # A short yes/no carries no sentiment worth a model call (this path runs no encoder at
            # all); it also ends a run of negative messages.
            emotion = detect_emotion(text)
            state.note_sentiment(None)
            turn = self.orders.resolve_pending(pending, answer, user_key, language)
            state.failures = 0
            state.remember_intent(turn.intent)
            _mark(turn, emotion)
            return turn

        # The encoder reads 512 tokens at most; longer input only costs time (tokenizing 10k chars).
        model_text = text[:MODEL_CHARS]
        query_vector = self.models.encoder.encode([model_text], mode="query")[0]
        sentiment = self._read_sentiment(model_text)  # the vector above is reused: no second e5 run
        emotion = detect_emotion(text, sentiment=sentiment)
        record = None if sentiment is None else {"label": sentiment.label, "negative": round(sentiment.negative, 4)}
        previous = state.note_sentiment(record)
        entities = self.models.extractor.extract(text, products=False)
        intent, confidence = self._intent(model_text, entities, state, query_vector)
        reason = "anger" if emotion.angry else "negative_sentiment" if self._sustained(previous, sentiment) else ""
        if reason:
            turn = self._escalation_turn(conversation_id, state, language, reason, intent=intent)
            turn.confidence = confidence
            _mark(turn, emotion)
            return turn
        turn = self._dispatch(conversation_id, intent, confidence, text, entities, query_vector, state, user_key)
        _mark(turn, emotion)
        if turn.escalated:
            return turn
        failed = intent == FALLBACK or any(a.outcome == "no_answer" for a in turn.actions)
        state.failures = state.failures + 1 if failed else 0
        state.remember_intent(turn.intent)
        if state.failures >= self.max_failures:
            escalation = self._escalation_turn(conversation_id, state, language, "repeated_failure", intent=intent)
            escalation.text = turn.text + ("" if language == "zh" else " ") + escalation.text
            escalation.confidence = confidence
            _mark(escalation, emotion)
            return escalation
        return turn

    def _read_sentiment(self, text: str) -> Sentiment | None:
        model = self.models.sentiment
        if model is None:
            return None
        try:
            return read_sentiment(model, text)
        except Exception:
            # An auxiliary signal: without it the lexicon still catches anger, and the turn goes on.
            log.exception("sentiment model failed; the anger lexicon decides alone this turn")
            return None

    def _sustained(self, previous: dict[str, Any] | None, current: Sentiment | None) -> bool:
        """Negative in this message and in the previous one: one unhappy line is not a reason yet."""
        if current is None or previous is None or current.negative < self.negative_threshold:
            return False
        return float(previous.get("negative") or 0.0) >= self.negative_threshold

    def _intent(
        self, text: str, entities: Entities, state: ConversationState, query_vector: np.ndarray
    ) -> tuple[str, float]:
        prediction = self.models.classifier.predict([text], threshold=0.0)[0]
        label, confidence = str(prediction.label), float(prediction.confidence)
        keyword = keyword_intent(text)
        awaiting = state.awaiting or {}
        # The detail we asked for: an order number, or a new address.
        picked = entities.order_ids or pick_option(text, list(awaiting.get("options") or []))
        if awaiting.get("slot") == "order_id" and picked and keyword in (None, awaiting.get("intent")):
            return str(awaiting["intent"]), confidence
        slot = awaiting.get("slot")
        if slot == "address" and keyword in (None, "change_shipping_address") and extract_address(text, whole=True):
            return "change_shipping_address", confidence
        if (
            slot == "product"
            and keyword in (None, "product_question")
            and self.models.extractor.link_products(text, query_vector=query_vector)
        ):
            return "product_question", confidence
        # An order id plus an explicit word ("退款", "cancel") outweighs an unsure or off-topic model.
        if (
            keyword in ORDER_INTENTS
            and entities.order_ids
            and label != keyword
            and (label not in ORDER_INTENTS or confidence < 0.9)
        ):
            return str(keyword), confidence
        # A complaint that names an order and reads nearly as much as a question about it ("O201
        # still not shipped, days of asking and nothing"): that order's status answers it now. An
        # explicit "投诉" / "complain" keeps it a complaint, and frustration that goes on still
        # escalates (two negative messages in a row).
        if label == "complaint" and entities.order_ids and keyword != "complaint" and len(prediction.top) > 1:
            runner_up, probability = prediction.top[1]
            if INTENT_TOOLS.get(str(runner_up)) == "track" and probability >= COMPLAINT_ORDER_FLOOR:
                return str(runner_up), float(probability)
        # An order id is the shop's own vocabulary: a message with one is in the domain even when
        # it is shorter or terser than any training text ("where is O0000102?").
        if confidence >= self.intent_threshold and (prediction.in_domain or entities.order_ids):
            return label, confidence
        if keyword:
            return keyword, confidence
        return FALLBACK, confidence

    def _dispatch(
        self,
        conversation_id: str,
        intent: str,
        confidence: float,
        text: str,
        entities: Entities,
        query_vector: np.ndarray,
        state: ConversationState,
        user_key: str,
    ) -> AssistantTurn:
        language = state.language
        awaiting = state.take_awaiting()
        if intent in ORDER_INTENTS:
            order_id = entities.order_ids[0] if entities.order_ids else None
            turn = self.orders.turn(intent, text, order_id, state, user_key, awaiting)
        elif intent in HUMAN_INTENTS:
            return self._escalation_turn(conversation_id, state, language, intent, intent=intent)
        elif intent in ("product_question", "stock_question"):
            turn = self.catalog.product_turn(text, query_vector, state, user_key, intent)
        elif intent == "recommendation_request":
            turn = self.catalog.recommendation_turn(text[:MODEL_CHARS], user_key, language)
        elif intent == "chitchat":
            thanks = re.search(r"thank|thx|谢", text, re.IGNORECASE)
            turn = AssistantTurn(self.act("thanks" if thanks else "greeting", language), intent, 0.0)
        elif intent == FALLBACK:
            generation = self.models.generator.generate("clarify", [], language=language)
            turn = AssistantTurn(generation.text, intent, 0.0)
        else:  # policy and account questions: the shop's documents
            turn = self._policy_turn(text, query_vector, language)
        turn.intent = intent
        turn.confidence = confidence
        turn.language = language
        return turn

    # -- products, suggestions, policies ---------------------------------------------------------
    def _policy_turn(self, text: str, query_vector: np.ndarray, language: str) -> AssistantTurn:
        hits: list[Hit] = self.models.policy_index.search(text, k=2, language=language, query_vector=query_vector)
        if not hits:
            return AssistantTurn(self.act("no_answer", language), "", 0.0, actions=[Action("policy", "no_answer")])
        facts = [hits[0].fact()]
        generation = self.models.generator.generate("policy_answer", facts, language=language)
        return AssistantTurn(
            generation.text, "", 0.0, facts=facts, citations=[hits[0].citation], actions=[Action("policy", "looked_up")]
        )

    # -- a colleague takes over -------------------------------------------------------------------
    def _escalation_turn(
        self,
        conversation_id: str,
        state: ConversationState,
        language: str,
        reason: str,
        *,
        intent: str = "",
        record: bool = True,
    ) -> AssistantTurn:
        if record:
            if intent:
                state.remember_intent(intent)
            state.status = "escalated"
            state.escalation = {
                "reason": reason,
                "at_ms": int(time.time() * 1000),
                "intent_history": list(state.intents),
                "order_in_focus": state.focus,
                "last_customer_messages": list(state.customer_messages)[-3:],
                "language": language,
                "failures": state.failures,
                # the sentiment readings of the last customer messages (None: no model call)
                "sentiments": list(state.sentiments),
            }
            state.pending = None
            state.awaiting = None
        facts = [Fact("ticket_id", conversation_id, "conversations")]
        generation = self.models.generator.generate("escalation", facts, language=language)
        return AssistantTurn(
            generation.text,
            intent or "escalation",
            0.0,
            facts=facts,
            actions=[Action("human", "escalated")],
            escalated=True,
            language=language,
        )


def _mark(turn: AssistantTurn, emotion: Emotion) -> None:
    turn.emotion = emotion.label
    turn.sentiment = emotion.sentiment
