"""``GET /v1/segments``: customer segments (RFM and profile clusters) and basket rules.

Both read what ``shoplm segments`` stored; nothing is computed per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shoplm.app.insights import Insights
from shoplm.serve.deps import get_insights, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse
from shoplm.serve.schemas import AnalyticsReport

router = APIRouter(prefix="/v1", tags=["segments"], responses=ERROR_RESPONSES)
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no segments job has run"}}


@router.get(
    "/segments",
    response_model=AnalyticsReport,
    summary="Customer segments: size, top categories and tags, value",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def segments(insights: Annotated[Insights, Depends(get_insights)]) -> Response:
    return json_response(insights.report("segments"))


@router.get(
    "/segments/basket-rules",
    response_model=AnalyticsReport,
    summary="Bought-together rules (FP-growth) with support, confidence and lift",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def basket_rules(insights: Annotated[Insights, Depends(get_insights)]) -> Response:
    return json_response(insights.report("basket"))
