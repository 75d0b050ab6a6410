"""``POST /v1/reviews/{review_id}/reply``: a drafted reply to a stored review, checked for faithfulness.

Read scope: drafting changes nothing in the store (a draft is a proposal a person posts, or
not) and reveals nothing a read key cannot already read (the review, its order's id, status,
date and amount, the shop's policies). It is a POST because each call runs the generator
anew: a model backend may answer differently each time, so the answer is not a cacheable GET.

The service (generator and policy passages) is loaded once per process, on first use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from shoplm.app.review_replies import ReviewReplies
from shoplm.serve.deps import json_response, per_app, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(prefix="/v1/reviews", tags=["reviews"], responses=ERROR_RESPONSES)


class GroundingFact(BaseModel):
    key: str
    value: str
    source: str


class ReplyDraftOut(BaseModel):
    """A drafted reply: ``draft`` passed the checker; ``faithful``/``unsupported`` judge the backend's own draft."""

    review_id: str
    language: str
    review_language: str
    draft: str | None
    backend: str
    faithful: bool
    unsupported: list[str]
    grounding: list[GroundingFact]
    outcome: Literal["faithful", "replaced", "fallback", "flagged", "skipped"]
    rejected_draft: str | None
    reason: str | None
    tone: str
    notes: list[str]
    skipped: str | None


def get_review_replies(request: Request) -> ReviewReplies:
    """The process's :class:`ReviewReplies` (made on first use; its models load on first draft)."""
    return per_app(request, "review_replies", lambda state: ReviewReplies(state.store, state.settings))


@router.post(
    "/{review_id}/reply",
    response_model=ReplyDraftOut,
    summary="Draft a reply to a stored review, grounded in its order and the shop's policies",
    dependencies=[Depends(require("read"))],
    responses={
        404: {"model": ErrorResponse, "description": "no review with this id"},
        409: {"model": ErrorResponse, "description": "backend llm, but the shop has no language model configured"},
        422: {"model": ErrorResponse, "description": "an unknown backend"},
    },
)
def draft_review_reply(
    review_id: Annotated[str, Path(min_length=1, max_length=128, description="the stored review's id")],
    service: Annotated[ReviewReplies, Depends(get_review_replies)],
    backend: Annotated[
        Literal["template", "llm"] | None,
        Query(description="template, or llm (the configured model); default: the configured generator"),
    ] = None,
) -> Response:
    """An unfaithful model draft comes back replaced by the template's (``outcome: replaced``), with its claims."""
    return json_response(service.draft_reply(review_id, backend=backend))
