"""The order side of the dialogue: which order a message is about, the tools, confirmations, corrections.

:class:`OrderDesk` answers the order intents (track, cancel, refund, change the address, invoices,
returns) for the :class:`~shoplm.assistant.policy.DialoguePolicy`. The order a message is about
is, in this order: the id in the message; the choice the customer picked from the options
offered ("the second one", "第二个"); the order the conversation is about; else the customer's
recent orders: with exactly one that the intent can apply to (the only open order for "where
is my order?"), the reply lists the recent orders with their status and answers for that one;
with several, it offers them as choices. A correction ("no, the other order", "不是这个")
switches to the other order offered, or asks among the rest. Changes are only ever proposed:
the customer's "yes" applies them (see :meth:`OrderDesk.resolve_pending`).

Example:
    >>> pick_option("the second one please", ["O1", "O2"]), pick_option("第一个", ["O1", "O2"])
    ('O2', 'O1')
    >>> is_correction("no, the other order"), is_correction("不是这个"), is_correction("yes")
    (True, True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoplm.assistant.dialogue import Action, AssistantTurn, extract_address
from shoplm.assistant.entities import title_words
from shoplm.assistant.tools import (
    ADDRESS_CHANGEABLE,
    CANCELLABLE,
    INTENT_TOOLS,
    REFUNDABLE,
    RETURNABLE,
    OrderTools,
    ToolResult,
)
from shoplm.lm import Fact

if TYPE_CHECKING:
    from shoplm.assistant.models import AssistantModels
    from shoplm.assistant.state import ConversationState

#: Act -> text, as :meth:`DialoguePolicy.act` renders it.
Act = Callable[..., str]

#: The statuses of the orders an intent can be about, when the message names none (None: any).
CANDIDATE_STATUSES: dict[str, frozenset[str] | None] = {
    "track_order": frozenset({"pending", "paid", "shipped"}),
    "track_refund": frozenset({"refunded", "return_requested", "returned", "cancelled"}),
    "cancel_order": CANCELLABLE,
    "get_refund": REFUNDABLE,
    "change_shipping_address": ADDRESS_CHANGEABLE,
    "set_up_shipping_address": ADDRESS_CHANGEABLE,
    "return_item": RETURNABLE,
    "check_invoice": None,
    "get_invoice": None,
}

_CORRECTION = re.compile(
    r"\b(?:the )?(?:other|another|different|wrong) (?:one|order)\b|\bnot (?:this|that|the) (?:one|order)\b"
    r"|不是这个|不是这单|不是这笔|不是那个|另一个|另外一个|另一单|别的订单|其他订单|换一个订单|搞错了",
    re.IGNORECASE,
)
_ORDINALS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"\b(?:first|1st)\b|第一|第1|^\s*1\s*$", re.IGNORECASE), 0),
    (re.compile(r"\b(?:second|2nd)\b|第二|第2|^\s*2\s*$", re.IGNORECASE), 1),
    (re.compile(r"\b(?:third|3rd)\b|第三|第3|^\s*3\s*$", re.IGNORECASE), 2),
    (re.compile(r"\b(?:fourth|4th)\b|第四|第4|^\s*4\s*$", re.IGNORECASE), 3),
    (re.compile(r"\b(?:latest|newest|most recent)\b|最新|最近的", re.IGNORECASE), 0),
    (re.compile(r"\b(?:last one|oldest)\b|最后一个|最早", re.IGNORECASE), -1),
]


def fitting(intent: str, orders: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (order id, status) pairs an intent can be about (see :data:`CANDIDATE_STATUSES`)."""
    wanted = CANDIDATE_STATUSES.get(intent)
    return [(oid, status) for oid, status in orders if wanted is None or status in wanted]


def is_correction(text: str) -> bool:
    """Whether the message corrects which order is meant ("the other order", "不是这个")."""
    return bool(_CORRECTION.search(text))


def pick_option(text: str, options: list[str]) -> str | None:
    """The option a short answer picks by position ("the second one", "第二个"); None when none."""
    if not options or len(text) > 60:
        return None
    for pattern, index in _ORDINALS:
        if pattern.search(text) and -len(options) <= index < len(options):
            return options[index]
    return None


class OrderDesk:
    """Order turns over the :class:`OrderTools` (see the module docstring).

    Args:
        models: the generator and the policy passages the replies use.
        tools: the order tools.
        act: renders a reply template (``act(name, language, values)``).
        status_label: an order status as shown in a language (``status_label(status, language)``).
    """

    def __init__(
        self, models: AssistantModels, tools: OrderTools, act: Act, status_label: Callable[[str, str], str]
    ) -> None:
        self.models = models
        self.tools = tools
        self.act = act
        self.status_label = status_label

    # -- which order ----------------------------------------------------------------------------
    def turn(
        self,
        intent: str,
        text: str,
        order_id: str | None,
        state: ConversationState,
        user_key: str,
        awaiting: dict[str, Any],
    ) -> AssistantTurn:
        """Answer an order intent; ``order_id`` is the one named in the message (None: find it)."""
        language = state.language
        tool = INTENT_TOOLS[intent]
        address_awaited = awaiting.get("slot") == "address" and intent == awaiting.get("intent")
        overview, listed = "", []
        if not order_id and address_awaited:
            order_id = awaiting.get("order_id")
        if not order_id and awaiting.get("slot") == "order_id":
            order_id = pick_option(text, list(awaiting.get("options") or []))
        if not order_id:
            order_id = state.focus
        if not order_id:
            found = self._from_recent_orders(intent, text, state, user_key)
            if isinstance(found, AssistantTurn):
                return found
            order_id, overview, listed = found
        turn = self._on_order(intent, tool, order_id, text, state, user_key, address_awaited)
        if overview:
            # the orders the overview names are facts of the turn, like everything a reply states
            turn.text = overview + ("" if language == "zh" else " ") + turn.text
            turn.facts = [*(Fact("recent_order", f"{oid} ({s})", f"orders:{oid}") for oid, s in listed), *turn.facts]
        return turn

    def _from_recent_orders(
        self, intent: str, text: str, state: ConversationState, user_key: str
    ) -> tuple[str, str, list[tuple[str, str]]] | AssistantTurn:
        """(the order, the overview, the orders it lists) when one fits, else the question which one."""
        language = state.language
        tool = INTENT_TOOLS[intent]
        recent = self.tools.recent_orders(user_key)
        if not recent:
            state.awaiting = {"intent": intent, "slot": "order_id"}
            name = "no_orders" if user_key else "ask_order"
            return AssistantTurn(self.act(name, language), intent, 0.0, actions=[Action(tool, "needs_input")])
        named = self._naming(text, recent, user_key)  # "return my headphones": the order with headphones
        candidates = named or fitting(intent, recent)
        overview = self.act("recent_orders", language, {"orders": self._listing(recent, language)})
        if len(candidates) == 1 or len(recent) == 1:
            order_id = (candidates or recent)[0][0]
            return order_id, overview, recent
        return self._ask_which(intent, candidates or recent, state)

    def _naming(self, text: str, recent: list[tuple[str, str]], user_key: str) -> list[tuple[str, str]]:
        """The recent orders with an item the message names by a word of its title."""
        words = title_words(text)
        if not words:
            return []
        named = []
        for order_id, status in recent:
            order = self.tools.get(order_id, user_key)
            if order is not None and any(words & title_words(line.title) for line in order.lines):
                named.append((order_id, status))
        return named

    def _listing(self, orders: list[tuple[str, str]], language: str) -> str:
        separator = "，" if language == "zh" else ", "
        return separator.join(
            f"{oid}（{self.status_label(s, language)}）" if language == "zh" else f"{oid} ({s})" for oid, s in orders
        )

    def _ask_which(self, intent: str, options: list[tuple[str, str]], state: ConversationState) -> AssistantTurn:
        language = state.language
        ids = [oid for oid, _ in options]
        state.awaiting = {"intent": intent, "slot": "order_id", "options": ids}
        facts = [
            Fact(
                "option",
                f"{oid}（{self.status_label(s, language)}）" if language == "zh" else f"{oid} ({s})",
                f"orders:{oid}",
            )
            for oid, s in options
        ]
        generation = self.models.generator.generate("clarify", facts, language=language)
        tool = INTENT_TOOLS[intent]
        return AssistantTurn(
            generation.text, intent, 0.0, facts=generation.facts_used, actions=[Action(tool, "needs_input")]
        )

    def correction(
        self, text: str, state: ConversationState, user_key: str, pending: dict[str, Any] | None
    ) -> AssistantTurn | None:
        """The turn for "no, the other order" / "不是这个" (None: the message corrects no order)."""
        if not is_correction(text) or not user_key:
            return None
        intent = (pending or {}).get("intent") or next((i for i in reversed(state.intents) if i in INTENT_TOOLS), None)
        current = (pending or {}).get("order_id") or state.focus
        awaiting = state.awaiting or {}
        if not current and awaiting.get("slot") == "order_id" and awaiting.get("options"):
            # "the other one" while choosing: the choices again
            recent = dict(self.tools.recent_orders(user_key))
            options = [(oid, recent.get(oid, "")) for oid in awaiting["options"]]
            turn = self._ask_which(str(awaiting["intent"]), options, state)
            turn.intent, turn.language = str(awaiting["intent"]), state.language
            return turn
        if intent not in INTENT_TOOLS or not current:
            return None
        recent = self.tools.recent_orders(user_key)
        others = [(oid, s) for oid, s in recent if oid != current]
        choices = fitting(intent, others) or others
        state.focus = None
        if len(choices) == 1:
            turn = self._on_order(intent, INTENT_TOOLS[intent], choices[0][0], text, state, user_key, False)
        elif choices:
            turn = self._ask_which(intent, choices, state)
        else:
            state.awaiting = {"intent": intent, "slot": "order_id"}
            turn = AssistantTurn(
                self.act("no_other_order", state.language),
                intent,
                0.0,
                actions=[Action(INTENT_TOOLS[intent], "needs_input")],
            )
        turn.intent, turn.language = intent, state.language
        return turn

    # -- one order ------------------------------------------------------------------------------
    def _on_order(
        self,
        intent: str,
        tool: str,
        order_id: str,
        text: str,
        state: ConversationState,
        user_key: str,
        address_awaited: bool,
    ) -> AssistantTurn:
        language = state.language
        if tool == "track":
            result = self.tools.track(order_id, user_key)
            if result.outcome == "unknown_order":
                return self._unknown_order(tool, order_id, language)
            state.focus = order_id
            return self._track_reply(result, language)
        new_address = extract_address(text, whole=address_awaited) if tool == "change_address" else ""
        result = self.tools.check(tool, order_id, user_key, new_address=new_address)  # type: ignore[arg-type]
        if result.outcome == "unknown_order":
            return self._unknown_order(tool, order_id, language)
        state.focus = order_id
        values = _values(result.facts)
        if result.outcome == "needs_input":
            state.awaiting = {"intent": intent, "slot": "address", "order_id": order_id}
            return AssistantTurn(
                self.act("ask_address", language, values),
                intent,
                0.0,
                facts=result.facts,
                actions=[Action(tool, "needs_input", order_id)],
            )
        if result.outcome == "not_allowed":
            return self._refusal(tool, result, language, values)
        state.pending = {"tool": tool, "order_id": order_id, "new_address": new_address, "intent": intent}
        return AssistantTurn(
            self.act(f"confirm_{tool}", language, values),
            intent,
            0.0,
            facts=result.facts,
            actions=[Action(tool, "proposed", order_id)],
        )

    def _policy_passage(self, query_zh: str, query_en: str, language: str) -> list[Any]:
        return self.models.policy_index.search(query_zh if language == "zh" else query_en, k=1, language=language)

    def _refusal(self, tool: str, result: ToolResult, language: str, values: dict[str, str]) -> AssistantTurn:
        status = result.status or ""
        facts = list(result.facts)
        citations: list[str] = []
        if tool == "cancel" and status in {"shipped", "delivered"}:
            text = self.act("refuse_cancel_shipped", language, values)
            hits = self._policy_passage(
                "退货退款政策 七天无理由退货", "return an item within days of delivery refund", language
            )
            if hits:
                text += ("" if language == "zh" else " ") + hits[0].passage.text
                facts.append(hits[0].fact())
                citations.append(hits[0].citation)
        elif tool == "refund" and status == "pending":
            text = self.act("refuse_refund_pending", language, values)
        elif tool == "return" and result.reason in {"window", "excluded"}:
            text = self.act(f"refuse_return_{result.reason}", language, values)
            citations.append("policy:returns")
        else:
            text = self.act(f"refuse_{tool}", language, values)
        return AssistantTurn(
            text, "", 0.0, facts=facts, citations=citations, actions=[Action(tool, "not_allowed", result.order_id)]
        )

    def _unknown_order(self, tool: str, order_id: str, language: str) -> AssistantTurn:
        return AssistantTurn(
            self.act("unknown_order", language, {"order_id": order_id}),
            "",
            0.0,
            facts=[Fact("order_id", order_id, "request")],
            actions=[Action(tool, "unknown_order", order_id)],
        )

    def _track_reply(self, result: ToolResult, language: str) -> AssistantTurn:
        generation = self.models.generator.generate("order_status", result.facts, language=language)
        text = generation.text
        if generation.generator == "template":
            text += ("" if language == "zh" else " ") + _order_details(result.facts, language)
        return AssistantTurn(text, "", 0.0, facts=result.facts, actions=[Action("track", "looked_up", result.order_id)])

    # -- the customer's "yes" or "no" ------------------------------------------------------------
    def resolve_pending(self, pending: dict[str, Any], answer: str, user_key: str, language: str) -> AssistantTurn:
        """Apply the confirmed change (``answer`` "yes") or drop it ("no")."""
        tool, order_id, intent = pending["tool"], pending["order_id"], pending.get("intent", "")
        if answer == "no":
            return AssistantTurn(
                self.act("declined", language, {"order_id": order_id}),
                intent,
                1.0,
                facts=[Fact("order_id", order_id, f"orders:{order_id}")],
                actions=[Action(tool, "declined", order_id)],
                language=language,
            )
        result = self.tools.apply(tool, order_id, user_key, new_address=pending.get("new_address", ""))
        if result.outcome == "done":
            turn = self._done(tool, order_id, result, language)
        elif result.outcome == "unknown_order":
            turn = self._unknown_order(tool, order_id, language)
        elif result.outcome == "not_allowed":
            turn = self._refusal(tool, result, language, _values(result.facts))
        else:
            turn = AssistantTurn(self.act("error", language), intent, 1.0, actions=[Action(tool, "failed", order_id)])
        turn.intent, turn.confidence, turn.language = intent, 1.0, language
        return turn

    def _done(self, tool: str, order_id: str, result: ToolResult, language: str) -> AssistantTurn:
        facts = list(result.facts)
        citations: list[str] = []
        if tool in {"cancel", "refund", "return"}:
            hits = self._policy_passage(
                "退款多久到账 原路退回", "how long do refunds take to the original payment", language
            )
            if hits:
                facts.append(hits[0].fact())
                citations.append(hits[0].citation)
        policy = [f for f in facts if f.key == "policy"]
        if tool == "return":  # no generator task for it: the reply template, then the policy passage
            text = self.act("return_started", language, _values(result.facts))
            if policy:
                text += ("" if language == "zh" else " ") + policy[0].value
        else:
            task = {"cancel": "order_cancelled", "refund": "refund_started", "change_address": "address_changed"}[tool]
            generation = self.models.generator.generate(
                task, [f for f in facts if f.key != "policy"], language=language
            )
            text = generation.text
            if policy and generation.generator == "template":
                text += ("" if language == "zh" else " ") + policy[0].value
        return AssistantTurn(text, "", 1.0, facts=facts, citations=citations, actions=[Action(tool, "done", order_id)])


def _values(facts: list[Fact]) -> dict[str, str]:
    values: dict[str, str] = {}
    for fact in facts:
        values.setdefault(fact.key, fact.value)
    return values


def _order_details(facts: list[Fact], language: str) -> str:
    values = {f.key: f.value for f in facts}
    lines = [f.value for f in facts if f.key == "line"]
    date, update, amount = values.get("order_date", ""), values.get("last_update", ""), values.get("amount", "")
    if language == "zh":
        text = f"下单日期：{date}，最近更新：{update}；金额：{amount}。"
        return text + ("商品：" + "；".join(lines) + "。" if lines else "")
    text = f"Ordered on {date}, last update {update}; total {amount}."
    return text + (" Items: " + "; ".join(lines) + "." if lines else "")
