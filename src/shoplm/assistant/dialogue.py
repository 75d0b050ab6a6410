"""The dialogue's vocabulary: what a turn is, and how short answers, keywords and addresses are read.

:class:`AssistantTurn` is the assistant's answer to one customer message, with the
:class:`Action` objects it took or proposed. :func:`yes_or_no`, :func:`keyword_intent` and
:func:`extract_address` read a message without any model. The policy that decides each turn is
:class:`~shoplm.assistant.policy.DialoguePolicy`; the service that keeps conversations in the
store is :class:`shoplm.app.assistant.Assistant`.

Example:
    >>> yes_or_no("是的"), keyword_intent("帮我取消订单")
    ('yes', 'cancel_order')
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from shoplm.assistant.emotion import Sentiment
from shoplm.assistant.entities import extract_order_ids
from shoplm.assistant.tools import INTENT_TOOLS, clean_address
from shoplm.lm import Fact

MAX_CHARS = 10_000
MODEL_CHARS = 512

POLICY_INTENTS = frozenset(
    {
        "check_refund_policy",
        "check_cancellation_fee",
        "check_payment_methods",
        "delivery_options",
        "delivery_period",
        "payment_issue",
        "create_account",
        "delete_account",
        "edit_account",
        "switch_account",
        "recover_password",
        "registration_problems",
        "newsletter_subscription",
        "place_order",
        "change_order",
        "review",
        "coupon",
        "warranty",
    }
)
HUMAN_INTENTS = frozenset({"contact_human_agent", "contact_customer_service", "complaint"})
ORDER_INTENTS = frozenset(INTENT_TOOLS)
FALLBACK = "fallback"

# Keyword rules for when the classifier is unsure (first match wins; order matters).
_KEYWORDS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in [
        ("contact_human_agent", r"\b(human|real person|live agent|agent)\b|转人工|人工|真人"),
        ("complaint", r"\bcomplain|投诉"),
        ("check_cancellation_fee", r"cancell?ation fee|fee to cancel|取消.*(收费|手续费|费用|扣钱)"),
        ("track_refund", r"(where|status).*\brefund\b|refund.*(status|yet|received)|退款.*(到哪|进度|没收到|处理了)"),
        ("check_refund_policy", r"(return|refund) policy|退货政策|退款政策|无理由|how long.*refund|退款多久"),
        ("warranty", r"\bwarrant|\bguarantee|保修|质保|保固"),
        (
            "coupon",
            r"\bcoupon|\bvoucher|promo code|discount code|price (match|protection)|优惠券|优惠码|折扣码|保价|补差价",
        ),
        ("cancel_order", r"\bcancel|取消|撤销"),
        (
            "return_item",
            r"\breturn (my|the|this|these|it|them|an?|for)\b|start a return|send (it|this|them) back"
            r"|退货|退回|可以退吗|能退吗",
        ),
        ("get_refund", r"\brefund|money back|退款|退钱"),
        ("change_shipping_address", r"\baddress\b|地址"),
        ("track_order", r"where is my|\btrack|\bstatus\b|shipped|arriv|物流|快递|到哪|发货了|订单状态|查.{0,6}订单"),
        ("recommendation_request", r"\brecommend|\bsuggest|推荐|有什么.{0,6}(好|适合)"),
        ("stock_question", r"in stock|out of stock|sold out|restock|有货|库存|补货|现货|缺货"),
        ("product_question", r"\bprice\b|how much|多少钱|价格|材质"),
        ("check_payment_methods", r"pay with|payment method|支付方式|付款方式|支付宝|微信支付"),
        ("delivery_options", r"shipping cost|free shipping|express|包邮|运费|加急"),
        ("delivery_period", r"how long.*(deliver|ship|take)|多久.*(到|送|发货)"),
        (
            "chitchat",
            r"^\s*(hi|hello|hey|thanks|thank you|bye|good (morning|evening))\b|^\s*(你好|您好|谢谢|再见|在吗)",
        ),
    ]
]

_YES_EN = {"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "confirmed", "correct", "please"}
_YES_EN_PHRASES = ("go ahead", "do it", "that's right", "please do")
_YES_ZH = ("是的", "是", "确认", "确定", "对的", "对", "好的", "好", "可以", "嗯", "行", "没问题", "没错")
_NO_EN = {"no", "n", "nope", "nah", "don't", "dont", "stop", "not"}
_NO_EN_PHRASES = ("never mind", "no thanks", "keep it", "do not")
_NO_ZH = ("不", "算了", "先不", "否", "别", "不要", "不用")
_POLITE = re.compile(r"[\s,，.。!！~、]+")


@dataclass(frozen=True)
class Action:
    """Something the assistant did or proposed: ``tool`` on ``order_id`` with ``outcome``
    (``proposed``, ``done``, ``declined``, ``not_allowed``, ``unknown_order``, ``needs_input``,
    ``failed``, ``escalated``, ``looked_up``)."""

    tool: str
    outcome: str
    order_id: str | None = None


@dataclass
class AssistantTurn:
    """The assistant's answer to one customer message.

    Example:
        >>> AssistantTurn("Hi", "chitchat", 0.9).escalated
        False
    """

    text: str
    intent: str
    confidence: float
    facts: list[Fact] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    escalated: bool = False
    language: str = "en"
    emotion: str = "neutral"
    seconds: float = 0.0
    #: the sentiment model's reading of the message (None: no model call, e.g. a "yes" to a confirmation)
    sentiment: Sentiment | None = None

    def to_dict(self) -> dict[str, Any]:
        """The turn as JSON-ready data (``sentiment`` as ``{"label", "negative"}`` or None)."""
        out = asdict(self)
        out["facts"] = [asdict(f) for f in self.facts]
        out["actions"] = [asdict(a) for a in self.actions]
        return out


def yes_or_no(text: str) -> str | None:
    """``"yes"``, ``"no"`` or None for a short confirmation answer (long texts are never one).

    Example:
        >>> yes_or_no("Yes please"), yes_or_no("是的，确认"), yes_or_no("算了")
        ('yes', 'yes', 'no')
        >>> yes_or_no("yes, and also refund every other order of mine") is None
        True
    """
    lowered = text.strip().lower()
    if not lowered or len(lowered) > 40:
        return None
    words = [w for w in _POLITE.split(lowered) if w]
    if not words:
        return None
    has_cjk = bool(re.search(r"[\u4e00-\u9fff]", lowered))
    if has_cjk:
        compact = "".join(words)
        if len(compact) > 10:
            return None
        if compact.startswith(_NO_ZH):
            return "no"
        if "不" not in compact and compact.startswith(_YES_ZH):
            return "yes"
        return None
    if len(words) > 6:
        return None
    joined = " ".join(words)
    if words[0] in _NO_EN or joined.startswith(_NO_EN_PHRASES):
        return "no"
    if any(w in _NO_EN for w in words):
        return None
    if words[0] in _YES_EN or joined.startswith(_YES_EN_PHRASES):
        return "yes"
    return None


def keyword_intent(text: str) -> str | None:
    """The first keyword rule matching ``text`` (used when the classifier is unsure).

    Example:
        >>> keyword_intent("帮我取消订单"), keyword_intent("where is my parcel")
        ('cancel_order', 'track_order')
    """
    for name, pattern in _KEYWORDS:
        if pattern.search(text):
            return name
    return None


_ADDRESS_RE = re.compile(
    r"(?:new address(?: is)?|address (?:to|is)|\bto\b|改成|改为|改到|换成|送到|寄到|新地址(?:是|为)?|地址(?:是|为))"
    r"\s*[:：]?\s*(.+)$",
    re.IGNORECASE | re.DOTALL,
)


def extract_address(text: str, *, whole: bool = False) -> str:
    """The new address in a message ("... to 5 Park Road", "地址改成北京市..."); ``whole``: the message is one.

    Example:
        >>> extract_address("change the address of order O0000005 to 5 Park Road, Shanghai 200000")
        '5 Park Road, Shanghai 200000'
    """
    candidate = ""
    match = _ADDRESS_RE.search(text)
    if match:
        candidate = match.group(1)
    elif whole:
        candidate = text
    for order_id in extract_order_ids(candidate):
        candidate = candidate.replace(order_id, " ")
    candidate = clean_address(candidate)
    # An address names a place: it has a number, or several Chinese characters, or a few words.
    cjk = len(re.findall(r"[\u4e00-\u9fff]", candidate))
    if not candidate or not (re.search(r"\d", candidate) or cjk >= 4 or len(candidate.split()) >= 3):
        return ""
    if re.fullmatch(r"(a |the )?(new|different|another) (address|place)", candidate.lower()):
        return ""
    return candidate
