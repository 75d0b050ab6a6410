"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI spec).

Row-level rules (event types, timestamps in the future, negative prices) are checked by the
ingest pipeline, which reports each rejected row with its field and reason; these models
only check shapes, so one bad row never turns a whole batch into a 422.

Example:
    >>> EventIn(user_id="U1", item_id="I9", event_type="view").event_type
    'view'
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator

from shoplm.recommend.engine import Scene

_ID = Field(min_length=1, max_length=128)


def _a_json_number(value: Any) -> Any:
    """A JSON integer may be written 3.0 (JSON Schema says so), but ``true`` or "3" is no number."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("a number is needed")
    return value


class EventIn(BaseModel):
    """One behaviour event, as the shop knows it (``user_id`` is the shop's own id)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="idempotency key: the same id is stored once"
    )
    user_id: str = Field(min_length=1, max_length=256, description="the shop's user id (pseudonymized on ingest)")
    item_id: str | None = Field(default=None, max_length=128, description="required except for search events")
    event_type: str = Field(
        min_length=1,
        max_length=32,
        description="view, click, add_to_cart, purchase, search, rate or exposure (the service logs it for A/B tests)",
    )
    # Any text or number: a row whose timestamp is none (or absurd) is refused on its own, with the reason.
    timestamp: Annotated[str, Strict()] | Annotated[float, Strict(), Field(allow_inf_nan=False)] | None = Field(
        default=None, description="ISO-8601 or Unix epoch seconds/milliseconds; default: now"
    )
    session_id: str | None = Field(default=None, max_length=128)
    scene: str | None = Field(default=None, max_length=32)
    query: str | None = Field(default=None, max_length=1000)
    value: float | None = Field(
        default=None,
        strict=True,  # a number, not a boolean or text
        allow_inf_nan=False,
        ge=-1e12,
        le=1e12,
        description="rating 1-5 for rate, amount for purchase",
    )


class EventBatch(BaseModel):
    """A batch of events, committed in one transaction."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, description="at most server.max_batch_events")


class RejectedRow(BaseModel):
    index: int = Field(description="position of the row in the batch (0-based)")
    id: str | None = Field(default=None, description="the row's id, when it had one")
    field: str
    reason: str


class IngestResult(BaseModel):
    """What a batch did: ``received = accepted + rejected + duplicates``."""

    received: int
    accepted: int
    inserted: int
    updated: int
    rejected: int
    duplicates: int
    flagged_bots: int
    rejects: list[RejectedRow]
    seconds: float


class ItemIn(BaseModel):
    """One catalog item; a changed item replaces the stored one."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = _ID
    title: str = Field(min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=20_000)
    category: str | None = Field(default=None, max_length=1000, description="path, levels joined by ' > '")
    brand: str | None = Field(default=None, max_length=256)
    # Bounds beyond any shop's: the ingest pipeline rejects negative rows itself, with a reason,
    # but values past int64 or infinity would crash its casts.
    price: float | None = Field(default=None, strict=True, allow_inf_nan=False, ge=-1e12, le=1e12)
    currency: str | None = Field(default=None, max_length=8)
    stock: Annotated[int, Field(ge=-(10**12), le=10**12), BeforeValidator(_a_json_number)] | None = None
    language: str | None = Field(default=None, max_length=16)
    attributes: dict[str, Any] | None = None


class ItemBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(min_length=1, max_length=1000)


class ItemsResult(IngestResult):
    recommendable: list[str] = Field(description="items new to the live models, recommendable from now on")


class Recommended(BaseModel):
    item_id: str
    title: str
    score: float
    reason: str
    sources: dict[str, int] = Field(description="candidate source -> rank of the item there (1-based)")


class RecommendationList(BaseModel):
    user_id: str | None
    scene: Scene
    cold_start: bool = Field(description="true when nothing is known of the user yet")
    model_version: str
    items: list[Recommended]
    experiment: str | None = Field(default=None, description="the A/B test the user is in on this scene, if any")
    arm: str | None = Field(default=None, description="the experiment's arm served (see /v1/experiments)")


class CategoryShare(BaseModel):
    category: str
    share: float


class BrandShare(BaseModel):
    brand: str
    share: float


class Profile(BaseModel):
    user_id: str = Field(description="the shop's user id, as asked")
    pseudonymous_id: str = Field(description="the id the store keeps")
    events: int
    cold_start: bool
    top_categories: list[CategoryShare]
    top_brands: list[BrandShare]
    price_band: str
    tags: list[str]
    vector: list[float]


#: Longest customer message taken (the assistant itself reads at most its ``max_chars``, 10,000 by default).
MAX_MESSAGE_CHARS = 10_000
#: Conversation ids are short and URL-safe: they are path parameters, and message ids embed them.
CONVERSATION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_CONVERSATION_ID = 96


def _valid_utf8(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they cannot be stored or hashed as UTF-8.
    return value.encode("utf-8", errors="replace").decode("utf-8")


class AssistantMessage(BaseModel):
    """One customer message to the assistant."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CONVERSATION_ID,
        pattern=CONVERSATION_ID,
        description="continue this conversation; omit to start a new one (its id is in the answer)",
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="the shop's user id; omit for a guest, who can ask questions but has no orders",
    )
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="the customer's message")

    @field_validator("user_id")
    @classmethod
    def _user_utf8(cls, value: str | None) -> str | None:
        return None if value is None else _valid_utf8(value)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        value = _valid_utf8(value)
        if not value.replace("\x00", "").strip():
            raise ValueError("the message is blank")
        return value


class AssistantFact(BaseModel):
    key: str
    value: str
    source: str = Field(description="where the fact came from: orders:<id>, items:<id>, a policy passage, ...")


class AssistantAction(BaseModel):
    tool: str = Field(description="track, cancel, refund, change_address, policy, product, recommend, human, ...")
    outcome: str = Field(
        description="proposed, done, declined, not_allowed, unknown_order, needs_input, looked_up, escalated, ..."
    )
    order_id: str | None = None


class AssistantSentiment(BaseModel):
    label: str
    negative: float = Field(description="the calibrated probability that the message is negative")


class AssistantReply(BaseModel):
    """The assistant's answer to one message; a change to an order is only ``proposed`` until confirmed."""

    conversation_id: str
    status: str = Field(description="open, or escalated once a colleague has to take over")
    text: str = Field(description="the reply to show the customer")
    intent: str
    confidence: float
    language: str = Field(description="en or zh: the reply's language")
    emotion: str = Field(description="neutral, frustrated or angry")
    escalated: bool
    actions: list[AssistantAction]
    facts: list[AssistantFact] = Field(description="what the reply is grounded on")
    citations: list[str] = Field(description="the policy passages quoted")
    sentiment: AssistantSentiment | None = Field(
        default=None, description="the sentiment model's reading of the message; null when not read"
    )
    seconds: float


class StoredMessage(BaseModel):
    role: str = Field(description="customer or assistant")
    text: str = Field(description="as stored: emails and phone numbers masked")
    intent: str
    ts_ms: int


class PendingChange(BaseModel):
    tool: str
    order_id: str | None


class Conversation(BaseModel):
    """A stored conversation, its messages oldest first."""

    conversation_id: str
    user_id: str | None = Field(description="the pseudonymous id of its customer; null for a guest")
    channel: str
    status: str
    started_ms: int
    escalation: dict[str, Any] | None = Field(description="the summary for the colleague, once escalated")
    pending: PendingChange | None = Field(description="a change awaiting the customer's confirmation")
    messages: list[StoredMessage]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    store: bool
    models: bool
    model_version: str | None
    assistant: bool = Field(default=False, description="the assistant's models are loaded")
    detail: str | None = None


# -- analytics ---------------------------------------------------------------------------------
class ChurnWarning(BaseModel):
    """A customer's churn probability and why (see ``shoplm churn``)."""

    user_id: str | None = Field(description="the shop's user id as asked (None in lists: the store keeps no raw id)")
    pseudonymous_id: str
    probability: float = Field(ge=0, le=1, description="of no purchase in the churn window after the cutoff")
    at_risk: bool = Field(description="probability at or above the warning threshold")
    reasons: list[str] = Field(description="readable reasons, strongest first")
    details: dict[str, Any] = Field(description="the features behind the score")
    computed_at: str


class AtRiskList(BaseModel):
    threshold: float
    warned: int = Field(description="customers at or above the threshold")
    scored: int = Field(description="customers scored by the last churn job")
    users: list[ChurnWarning]


class AnalyticsReport(BaseModel):
    """A report written by an analytics job (its keys depend on the report)."""

    model_config = ConfigDict(extra="allow")

    computed_at: str


class PriceChange(BaseModel):
    change: float = Field(description="relative change (−0.1 is −10%)")
    interval: list[float | None]
    weekly: float | None


class PriceAnswer(BaseModel):
    """A category's elasticity and the what-if answer (see ``shoplm pricing``)."""

    category: str
    price_change: float
    elasticity: float | None
    interval: list[float | None] = Field(description="the elasticity's interval at ``level``")
    level: float
    verdict: str = Field(description="elastic, inelastic, undetermined, confounded or no_variation")
    baseline: dict[str, float | None]
    units: PriceChange | None = None
    revenue: PriceChange | None = None
    note: str | None = None
    evidence: dict[str, float | int | None]
    computed_at: str


class Alert(BaseModel):
    """One alert, stored once; ``body`` holds its reasons and evidence."""

    alert_id: str
    kind: str
    subject: str = Field(description="the order, item or category concerned")
    score: float
    title: str
    body: dict[str, Any]
    attempts: int = Field(description="webhook deliveries tried")
    created_at: str
    delivered_at: str | None = Field(description="when the webhook acknowledged it; None without one")


class AlertList(BaseModel):
    total: int
    alerts: list[Alert]


class WeekPoint(BaseModel):
    x: str = Field(description="week start (YYYY-MM-DD)")
    y: float


class WeekForecast(BaseModel):
    x: str = Field(description="week start (YYYY-MM-DD)")
    mean: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


class ReorderAdvice(BaseModel):
    item_id: str
    title: str
    order_quantity: int
    on_hand: int | None = Field(description="the catalog's stock count; None when unknown (taken as 0)")
    reorder_point: float
    order_up_to: float
    safety_stock: float
    newsvendor: float | None
    reason: str


class ItemForecast(BaseModel):
    item_id: str
    title: str
    horizon: int
    history: list[WeekPoint]
    forecast: list[WeekForecast]
    reorder: ReorderAdvice | None = Field(description="None when nothing needs ordering now")
    computed_at: str

    model_config = ConfigDict(extra="allow")


class ReorderList(BaseModel):
    policy: dict[str, Any]
    items: list[ReorderAdvice]
    computed_at: str


#: most review texts one insight request (sentiment, aspects) may analyse: each new text costs the
#: encoder ~10-100 ms
MAX_REVIEW_TEXTS = 50
#: characters per text: 50 such texts stay near the 1 MB body limit, and one text over it is a 422, not a 413
MAX_REVIEW_TEXT_CHARS = 20_000


class ReviewTextsIn(BaseModel):
    """Review texts to analyse (Chinese or English; each text's language is detected); nothing is stored."""

    texts: list[Annotated[str, Field(max_length=MAX_REVIEW_TEXT_CHARS)]] = Field(
        min_length=1, max_length=MAX_REVIEW_TEXTS
    )
