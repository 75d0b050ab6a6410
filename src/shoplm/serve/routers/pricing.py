"""``GET /v1/pricing/{category}``: a category's own-price elasticity and a what-if at price ±x%.

Reads what ``shoplm pricing`` stored; the what-if is arithmetic on the stored interval.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from shoplm.app.insights import Insights
from shoplm.serve.deps import get_insights, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse
from shoplm.serve.schemas import PriceAnswer

router = APIRouter(prefix="/v1/pricing", tags=["pricing"], responses=ERROR_RESPONSES)


@router.get(
    "/{category}",
    response_model=PriceAnswer,
    summary="A category's price elasticity, and demand and revenue at a changed price",
    dependencies=[Depends(require("read"))],
    responses={404: {"model": ErrorResponse, "description": "unknown category, or no pricing job has run"}},
)
def pricing(
    category: Annotated[str, Path(min_length=1, max_length=128)],
    insights: Annotated[Insights, Depends(get_insights)],
    change: Annotated[
        float, Query(gt=-1, le=10, description="price change as a fraction: 0.1 is +10%, -0.05 is -5%")
    ] = 0.1,
) -> Response:
    """A category whose prices barely moved gets its verdict and a note, and no numbers: the data cannot tell."""
    return json_response(insights.pricing(category, change=change))
