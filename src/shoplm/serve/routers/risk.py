"""``GET /v1/risk/alerts``: fraud alerts, newest first, each saying which rules and features fired.

Reads what ``shoplm fraud`` stored (each alert once; webhook delivery is tracked per alert).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shoplm.app.insights import Insights
from shoplm.serve.deps import get_insights, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES
from shoplm.serve.schemas import AlertList

router = APIRouter(prefix="/v1/risk", tags=["risk"], responses=ERROR_RESPONSES)


@router.get(
    "/alerts",
    response_model=AlertList,
    summary="Fraud alerts with the rules and features that fired",
    dependencies=[Depends(require("read"))],
)
def alerts(
    insights: Annotated[Insights, Depends(get_insights)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    since_ms: Annotated[int, Query(ge=0, description="only alerts raised at or after this time (epoch ms)")] = 0,
) -> Response:
    return json_response(insights.fraud_alerts(limit=limit, since_ms=since_ms))
