"""``POST /v1/insight/sentiment`` (score texts) and ``GET /v1/insight/sentiment/items/{item_id}`` (stored summary).

The model is loaded on the first request that needs it and kept for the life of the process
(:func:`shoplm.app.reviews.sentiment_model`); scoring runs in the service's compute thread, so
the event loop keeps answering meanwhile. The item summary reads what ``shoplm reviews analyze``
(or ingest) stored: nothing is computed per request.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.errors import NotFoundError
from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse
from shoplm.serve.schemas import ReviewTextsIn

router = APIRouter(prefix="/v1/insight/sentiment", tags=["insight"], responses=ERROR_RESPONSES)


class SentimentOut(BaseModel):
    """One text's sentiment; ``skipped`` (``empty``, ``unsupported_language``) leaves the scores null."""

    polarity: str | None
    p_positive: float | None
    rating: float | None = Field(description="expected 1-5 star rating")
    skipped: str | None
    language: str | None
    truncated: bool = Field(description="only the first max_chars characters were read")
    html_stripped: bool


class SentimentList(BaseModel):
    model_version: str
    results: list[SentimentOut]


class ItemSentiment(BaseModel):
    """Counts per polarity over an item's scored reviews, and the mean rating estimate."""

    item_id: str
    reviews: int
    scored: int
    skipped: int
    counts: dict[str, int]
    mean_rating_estimate: float | None
    mean_p_positive: float | None


@router.post(
    "",
    response_model=SentimentList,
    summary="Polarity, P(positive) and a 1-5 rating estimate of review texts",
    dependencies=[Depends(require("read"))],
)
async def score_texts(body: ReviewTextsIn, request: Request) -> Response:
    state = get_state(request)

    def run() -> dict[str, Any]:
        from shoplm.app.reviews import sentiment_model

        model = sentiment_model(state.settings)
        return {"model_version": model.model_version, "results": [r.to_dict() for r in model.predict(body.texts)]}

    answer = await anyio.to_thread.run_sync(run, limiter=state.compute_limiter())
    return json_response(answer)


@router.get(
    "/items/{item_id}",
    response_model=ItemSentiment,
    summary="The stored review sentiment of one item: counts per polarity, mean rating estimate",
    dependencies=[Depends(require("read"))],
    responses={404: {"model": ErrorResponse, "description": "no such item in the catalog"}},
)
def item_sentiment(
    item_id: Annotated[str, Path(min_length=1, max_length=128, description="the shop's item id")],
    request: Request,
) -> Response:
    """404 for an item the catalog does not have; an item without reviews has all counts 0."""
    store = get_state(request).store
    if store.items.by_ids([item_id], ["item_id"]).empty:
        raise NotFoundError(f"item {item_id!r} is not in the catalog")
    return json_response(store.review_sentiment.item_summary(item_id))
