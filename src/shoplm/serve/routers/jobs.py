"""``GET /v1/jobs``: every scheduled job with its schedule, last run, next run and outcome.

Read from the store (``job_runs``), so every worker process answers the same whichever of them
runs the scheduler. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoplm.app.scheduler import job_statuses
from shoplm.serve.deps import ServiceState, get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["operations"], responses=ERROR_RESPONSES)


class JobRunView(BaseModel):
    job: str
    started: str = Field(description="when the run started (UTC)")
    finished: str | None = Field(description="when it ended; null while it runs")
    seconds: float | None
    outcome: str = Field(description="running, ok, failed (message: the error) or skipped (nothing to do yet)")
    message: str


class JobView(BaseModel):
    name: str = Field(description="retention, train, forecast, churn, fraud or alerts")
    enabled: bool
    schedule: str = Field(description="'every 6h' (slots from midnight UTC) or 'daily 03:00' (UTC)")
    last_run: JobRunView | None
    next_run: str | None = Field(description="when it runs next (UTC); null when disabled")
    due: bool = Field(description="its slot has come: the scheduler runs it at its next poll")


class JobList(BaseModel):
    now: str
    scheduler: str | None = Field(description="the process running the jobs (host:pid:id); null: none is running")
    retention_days: int = Field(description="events older than this are dropped by retention; 0: kept forever")
    jobs: list[JobView]
    runs: list[JobRunView] = Field(description="the newest runs, newest first")


@router.get(
    "/jobs",
    response_model=JobList,
    summary="Scheduled jobs: last run, next run and outcome of each",
    dependencies=[Depends(require("read"))],
)
async def jobs(
    state: Annotated[ServiceState, Depends(get_state)],
    runs: Annotated[int, Query(ge=0, le=500, description="how many of the newest runs to list")] = 40,
) -> Response:
    found = await anyio.to_thread.run_sync(lambda: job_statuses(state.store, state.settings, runs=runs))
    return json_response(found)
