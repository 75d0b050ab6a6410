"""Differentially private reports (admin keys only) and the privacy budget they spend.

``GET /v1/reports`` lists the reports; ``GET /v1/reports/{name}?epsilon=1.0`` releases one with
calibrated noise, paid from the dataset's budget (409 once it would be passed; the same query
over unchanged data answers the recorded release and spends nothing); ``GET /v1/privacy/budget``
shows what is spent and every release, with the API key that asked for it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from shoplm.app import reports
from shoplm.serve.auth import ApiKey
from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(tags=["privacy"], responses=ERROR_RESPONSES)

_CONFLICT: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no such report"},
    409: {"model": ErrorResponse, "description": "the release would pass the privacy budget"},
}


@router.get(
    "/v1/reports",
    summary="The differentially private reports",
    dependencies=[Depends(require("admin"))],
)
def list_reports(request: Request) -> Response:
    return json_response({"reports": reports.list_reports(get_state(request).settings)})


@router.get(
    "/v1/reports/{name}",
    summary="Release a report with calibrated noise, paid from the privacy budget",
    responses=_CONFLICT,
)
def release_report(
    request: Request,
    key: Annotated[ApiKey, Depends(require("admin"))],
    name: Annotated[str, Path(description="e.g. daily-sales, daily-revenue, daily-views, daily-ratings")],
    epsilon: Annotated[float, Query(description="the privacy loss this release spends (> 0)")],
    start: Annotated[str | None, Query(description="first day, YYYY-MM-DD (UTC)")] = None,
    end: Annotated[str | None, Query(description="last day, YYYY-MM-DD (UTC); default today")] = None,
) -> Response:
    state = get_state(request)
    released = reports.release(
        state.store, state.settings, name, epsilon=epsilon, start=start, end=end, key_id=key.key_id
    )
    return json_response(released)


@router.get(
    "/v1/privacy/budget",
    summary="The privacy budget: total, spent and remaining ε, and every release",
    dependencies=[Depends(require("admin"))],
)
def privacy_budget(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    state = get_state(request)
    return json_response(reports.budget(state.store, state.settings, limit=limit))
