"""``/healthz`` (liveness), ``/readyz`` (store reachable, models loaded), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shoplm.serve.deps import get_state
from shoplm.serve.metrics import CONTENT_TYPE
from shoplm.serve.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the store answers and models are loaded",
    responses={503: {"model": Readiness, "description": "not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    state = get_state(request)
    store_ok, detail = True, None
    try:
        state.store.ping()
    except Exception as exc:  # any failure to reach the store means not ready
        store_ok, detail = False, f"store unreachable: {type(exc).__name__}"
    version = state.live.version
    if version is None and detail is None:
        detail = state.live.last_error or "no trained models yet"
    ready = store_ok and version is not None
    body = Readiness(
        status="ready" if ready else "not_ready",
        store=store_ok,
        models=version is not None,
        model_version=version,
        assistant=state.assistant.loaded,
        detail=detail or (None if state.assistant.loaded else state.assistant.last_error),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Every worker's counters and histograms, and each live worker's model gauges (with its ``pid``)."""
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE)
