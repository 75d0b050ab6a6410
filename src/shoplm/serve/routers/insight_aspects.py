"""``POST /v1/insight/aspects``: aspect terms, categories and polarities of review texts.

The shipped extractor is loaded on the first request and kept for the life of the process
(:func:`shoplm.insight.aspects.load_default_extractor`); extraction runs in the service's compute
thread, so the event loop keeps answering meanwhile. Nothing is stored.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES
from shoplm.serve.schemas import ReviewTextsIn

router = APIRouter(prefix="/v1/insight/aspects", tags=["insight"], responses=ERROR_RESPONSES)


class AspectOut(BaseModel):
    """One opinion: ``term`` is null for an implicit aspect; offsets index the cleaned ``text``."""

    term: str | None
    category: str = Field(
        description="quality, price, shipping, service, size, packaging, taste, battery, screen or other"
    )
    polarity: str = Field(description="positive, negative or neutral")
    confidence: float
    start: int | None
    end: int | None
    sentence: int


class ReviewAspectsOut(BaseModel):
    """A text's aspects; ``skipped`` (``empty``, ``unsupported_language``) leaves them empty."""

    text: str = Field(description="the text as read: HTML and emoji removed, cut at max_chars")
    language: str | None
    skipped: str | None
    truncated: bool
    aspects: list[AspectOut]


class AspectsList(BaseModel):
    results: list[ReviewAspectsOut]


@router.post(
    "",
    response_model=AspectsList,
    summary="Aspect terms, categories and polarities of review texts",
    dependencies=[Depends(require("read"))],
)
async def extract_aspects(body: ReviewTextsIn, request: Request) -> Response:
    """Per text, in order: its aspects, or why it was skipped (``empty``, ``unsupported_language``, ``no_words``)."""
    state = get_state(request)

    def run() -> dict[str, Any]:
        from shoplm.insight.aspects import load_default_extractor

        extractor = load_default_extractor(state.settings)
        results = extractor.extract(body.texts)
        return {"results": [r.to_dict() for r in results]}

    return json_response(await anyio.to_thread.run_sync(run, limiter=state.compute_limiter()))
