"""``POST /v1/ads/write``: checked, scored ad variants; ``GET /v1/ads/{item_id}/bandit``: creatives' posteriors.

Both need a read key: writing an ad stores nothing. Constraints that cannot all be met are
not an error here: the answer is 200 with ``ok: false``, ``unmet`` and each variant's violations
(``shoplm ads write`` exits 2 instead).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(prefix="/v1/ads", tags=["ads"], responses=ERROR_RESPONSES)
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no such item"}}
_INVALID = {422: {"model": ErrorResponse, "description": "unknown channel, language or attribute, or n out of 1-10"}}


class AdWriteRequest(BaseModel):
    """What to write: the item, the channel, how many variants and under which constraints."""

    item_id: str = Field(min_length=1, max_length=128)
    channel: Literal["search", "feed", "push"] = Field(description="the channel: its length limits are in [ads]")
    n: int = Field(default=5, ge=1, le=10)
    language: Literal["zh", "en"] | None = None
    must_mention: list[Literal["brand", "price", "color", "material", "size", "title", "category"]] = Field(
        default_factory=list, max_length=7
    )
    banned: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)
    templates_only: bool = Field(default=False, description="templates even when a model is configured")


class AdCheck(BaseModel):
    ok: bool
    detail: str


class AdVariantOut(BaseModel):
    text: str
    style: str
    generator: str
    length: int
    ok: bool
    checks: dict[str, AdCheck]
    violations: list[str]
    score: float
    score_source: str
    repaired: bool


class AdWriteResponse(BaseModel):
    item_id: str
    channel: str
    language: str
    limit: int
    ok: bool
    message: str
    unmet: list[str]
    variants: list[AdVariantOut]
    dropped: list[dict]
    notes: list[str]


class CreativeArm(BaseModel):
    arm: str
    style: str
    impressions: int
    clicks: int
    alpha: float
    beta: float
    mean: float
    low: float
    high: float
    p_best: float


class CreativePosteriors(BaseModel):
    item_id: str
    source: str
    impressions: int
    arms: list[CreativeArm]
    best_arm: str | None
    message: str


@router.post(
    "/write",
    response_model=AdWriteResponse,
    summary="Ad variants of an item for a channel, each constraint checked, scored and ranked",
    dependencies=[Depends(require("read"))],
    responses={**_NOT_FOUND, **_INVALID},
)
def write_ads(body: AdWriteRequest, request: Request) -> Response:
    """404 ``item_not_found``; 422 for a channel other than search, feed or push."""
    from shoplm.app.adcopy import write_ads as write

    state = get_state(request)
    result = write(
        state.store,
        state.settings,
        body.item_id,
        body.channel,
        body.n,
        language=body.language,
        must_mention=list(body.must_mention),
        banned=body.banned,
        use_model=not body.templates_only,
    )
    return json_response(result.to_dict())


@router.get(
    "/{item_id}/bandit",
    response_model=CreativePosteriors,
    summary="The posterior CTR of each ad creative of an item (Thompson sampling), from its impressions",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def creative_bandit(
    item_id: Annotated[str, Path(min_length=1, max_length=128, description="the item's id")], request: Request
) -> Response:
    from shoplm.app.adcopy import creative_posteriors

    state = get_state(request)
    return json_response(creative_posteriors(state.store, state.settings, item_id))
