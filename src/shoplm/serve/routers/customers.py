"""``GET /v1/users/{user_id}/churn`` and ``GET /v1/customers/at-risk``: churn warnings with reasons.

Both read what ``shoplm churn`` stored; nothing is computed per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from shoplm.app.insights import Insights
from shoplm.serve.deps import get_insights, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse
from shoplm.serve.schemas import AtRiskList, ChurnWarning

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "not scored, or no churn job has run"}}


@router.get(
    "/v1/users/{user_id}/churn",
    response_model=ChurnWarning,
    summary="A customer's churn probability and the reasons behind it",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def user_churn(
    user_id: Annotated[str, Path(min_length=1, max_length=256, description="the shop's user id")],
    insights: Annotated[Insights, Depends(get_insights)],
) -> Response:
    """404 ``user_not_scored`` for a user without a purchase before the churn job's cutoff."""
    return json_response(insights.churn(user_id))


@router.get(
    "/v1/customers/at-risk",
    response_model=AtRiskList,
    summary="The customers most likely to churn, with reasons",
    dependencies=[Depends(require("read"))],
)
def at_risk(
    request: Request,
    insights: Annotated[Insights, Depends(get_insights)],
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> Response:
    return json_response(insights.at_risk(limit=limit))
