"""``GET /v1/forecasts/{item_id}`` and ``GET /v1/reorder``: weekly demand forecasts and what to order now.

Both read what ``shoplm reorder`` stored; nothing is computed per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from shoplm.app.insights import Insights
from shoplm.serve.deps import get_insights, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse
from shoplm.serve.schemas import ItemForecast, ReorderList

router = APIRouter(prefix="/v1", tags=["forecast"], responses=ERROR_RESPONSES)
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "item not forecast, or no forecast job has run"}}


@router.get(
    "/forecasts/{item_id}",
    response_model=ItemForecast,
    summary="An item's weekly demand forecast with 80% and 95% intervals, and its reorder advice",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def item_forecast(
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    insights: Annotated[Insights, Depends(get_insights)],
) -> Response:
    return json_response(insights.forecast(item_id))


@router.get(
    "/reorder",
    response_model=ReorderList,
    summary="What to order now: quantities and reasons",
    dependencies=[Depends(require("read"))],
    responses={404: {"model": ErrorResponse, "description": "no forecast job has run"}},
)
def reorder(
    insights: Annotated[Insights, Depends(get_insights)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    return json_response(insights.reorder(limit=limit))
