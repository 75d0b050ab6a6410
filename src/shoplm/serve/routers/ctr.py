"""``POST /v1/ctr/score``: predicted click probabilities of candidate items for one user.

Scores with the live CTR model (``shoplm ctr train``); 404 ``not_found`` names that command when
none is trained, or the items the model does not know.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.serve.deps import ServiceState, get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(prefix="/v1/ctr", tags=["ctr"], responses=ERROR_RESPONSES)
_ERRORS = {
    404: {"model": ErrorResponse, "description": "no CTR model trained (run shoplm ctr train), or unknown items"},
    422: {"model": ErrorResponse, "description": "no candidates, too many, or an unknown scene"},
}


class CtrScoreRequest(BaseModel):
    """One user's candidates, the scene they would be shown in and optionally one slot for all."""

    user_id: str = Field(min_length=1, max_length=256, description="the shop's user id")
    item_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(min_length=1, max_length=1000)
    scene: Literal["home", "search", "item_detail"] = "home"
    position: int | None = Field(
        default=None, ge=0, le=1000, description="score every item in this slot; default: in the order given"
    )


class CtrScore(BaseModel):
    item_id: str
    p_click: float


class CtrScoreResponse(BaseModel):
    model_version: str
    scene: str
    scores: list[CtrScore]


@router.post(
    "/score",
    response_model=CtrScoreResponse,
    summary="Predicted click probability of each candidate item for a user",
    dependencies=[Depends(require("read"))],
    responses=_ERRORS,
)
async def score(body: CtrScoreRequest, state: Annotated[ServiceState, Depends(get_state)]) -> Response:
    from shoplm.app.ctr import score_items

    user = state.pseudonymizer.user(body.user_id)
    answer = await anyio.to_thread.run_sync(
        lambda: score_items(state.settings, user, body.item_ids, scene=body.scene, position=body.position),
        limiter=state.compute_limiter(),
    )
    return json_response(answer)
