"""``GET /v1/insight/alerts`` (complaint spikes) and ``GET /v1/insight/sentiment/daily`` (daily sentiment).

Both read what the opinion job stored (``shoplm insight alerts --run`` or the scheduled
``opinion`` job): no model is loaded and nothing is computed per request.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/insight", tags=["insight"], responses=ERROR_RESPONSES)


class ComplaintTopic(BaseModel):
    topic: str = Field(description="the topic's c-TF-IDF keywords")
    reviews: int = Field(description="reviews of the alert in this topic")


class OpinionAlertOut(BaseModel):
    """One spike of complaints about an item, category or brand, with the reviews behind it."""

    alert_id: str
    title: str
    score: float = Field(description="1 - the smallest BH-adjusted p-value of its days")
    created_ms: int
    delivered: bool = Field(description="acknowledged by the webhook")
    level: str
    key: str
    start: str
    end: str
    days: list[str]
    reviews: int
    negative: int
    baseline_share: float = Field(description="negative share over the trailing baseline before the spike")
    p_value: float | None
    q_value: float | None
    review_ids: list[str]
    topics: list[ComplaintTopic]
    keywords: str = Field(description="c-TF-IDF keywords setting its reviews apart from the other complaints")


class OpinionAlertList(BaseModel):
    total: int
    alerts: list[OpinionAlertOut]


class SentimentDay(BaseModel):
    day: str
    reviews: int
    negative: int
    negative_share: float


class SpikeMark(BaseModel):
    alert_id: str
    start: str
    end: str
    negative: int
    reviews: int


class DailySentiment(BaseModel):
    """Reviews and negative reviews per UTC day with the spikes found on them."""

    level: str
    key: str | None
    signal_note: str = Field(description="what counted as negative (the sentiment model, or ratings of 1-2)")
    days: list[SentimentDay]
    alerts: list[SpikeMark]
    computed_ms: int


@router.get(
    "/alerts",
    response_model=OpinionAlertList,
    summary="Complaint spikes per item, category and brand, with their reviews and topics",
    dependencies=[Depends(require("read"))],
    responses={422: {"description": "since is not a date"}},
)
def alerts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    since: Annotated[
        datetime.date | None, Query(description="only spikes ending on or after this day (YYYY-MM-DD)")
    ] = None,
) -> Response:
    from shoplm.app.opinion import opinion_alerts

    # A date in the schema: a client learns the format from the OpenAPI document, FastAPI refuses others (422).
    return json_response(opinion_alerts(get_state(request).store, limit=limit, since=since))


@router.get(
    "/sentiment/daily",
    response_model=DailySentiment,
    summary="Reviews and negative share per day for an item, category, brand or the whole shop",
    dependencies=[Depends(require("read"))],
    responses={404: {"description": "the opinion job has not run, or the key has no reviews"}},
)
def daily(
    request: Request,
    level: Annotated[Literal["item", "category", "brand"], Query()] = "category",
    key: Annotated[str | None, Query(max_length=512, description="default: the whole shop")] = None,
) -> Response:
    from shoplm.app.opinion import daily_series

    found: dict[str, Any] = daily_series(get_state(request).store, level, key)
    return json_response(found)
