"""``POST /v1/events``: behaviour events in, acknowledged only once committed.

A small batch (what a shop's frontend sends, usually one event) is validated and
pseudonymized row by row (:mod:`shoplm.ingest.rows`) and committed together with the
batches of concurrent requests (:mod:`shoplm.app.events`); a larger one takes the ingest
pipeline. Both answer the same way, and both answer only after the commit.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shoplm.ingest.pipeline import IngestReport, ingest
from shoplm.ingest.rows import EventBatch as PreparedEvents
from shoplm.ingest.rows import prepare_events
from shoplm.serve.deps import ServiceState, get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ApiError
from shoplm.serve.schemas import EventBatch, EventIn, IngestResult, RejectedRow

router = APIRouter(prefix="/v1", tags=["events"], responses=ERROR_RESPONSES)

_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "timestamp", "session_id", "scene", "query", "value")


def events_frame(events: list[EventIn], now_ms: int | None = None) -> pd.DataFrame:
    """The batch as the ingest pipeline's input frame (missing timestamps: now).

    Example:
        >>> events_frame([EventIn(user_id="U1", item_id="I1", event_type="view")], now_ms=5)["timestamp"].tolist()
        [5]
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rows = []
    for event in events:
        row = event.model_dump()
        if row["timestamp"] is None:
            row["timestamp"] = now_ms
        rows.append({c: ("" if row[c] is None and c != "value" else row[c]) for c in _COLUMNS})
    frame = pd.DataFrame(rows, columns=list(_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def ingest_result(report: IngestReport, ids: list[str | None]) -> dict[str, Any]:
    """An :class:`IngestReport` as the API's answer; rejected rows point at their batch position."""
    rejects = []
    for row in report.rejects.itertuples(index=False):
        index = int(row.line) - 1  # a DataFrame source numbers rows from 1
        rejects.append(
            RejectedRow(
                index=index, id=ids[index] if 0 <= index < len(ids) else None, field=row.field, reason=row.reason
            ).model_dump()
        )
    return {
        "received": report.read,
        "accepted": report.accepted,
        "inserted": report.inserted,
        "updated": report.updated,
        "rejected": report.rejected,
        "duplicates": report.duplicates,
        "flagged_bots": report.flagged_bots,
        "rejects": rejects,
        "seconds": round(report.seconds, 4),
    }


@router.post(
    "/events",
    response_model=IngestResult,
    summary="Record a batch of behaviour events",
    dependencies=[Depends(require("write"))],
)
async def post_events(batch: EventBatch, request: Request) -> Response:
    """Validate, pseudonymize and store a batch in one transaction, then answer.

    A 200 means every accepted event is committed. Events are idempotent by ``event_id``:
    sending a batch again (after a timeout, say) counts them as duplicates and stores nothing
    twice. Rows that fail validation are rejected one by one, each with its field and reason.
    """
    state = get_state(request)
    limit = state.settings.server.max_batch_events
    if len(batch.events) > limit:
        raise ApiError(
            413, f"a batch holds at most {limit:,} events; got {len(batch.events):,}", code="batch_too_large"
        )
    started = time.perf_counter()
    now_ms = int(time.time() * 1000)
    ids = [e.event_id for e in batch.events]
    rows = [_with_time(e, now_ms) for e in batch.events]
    prepared = prepare_events(
        rows,
        state.pseudonymizer,
        now_ms=now_ms,
        future_tolerance_ms=state.settings.ingest.future_tolerance_seconds * 1000,
        bot_burst_events=state.settings.ingest.bot_burst_events,
    )
    if prepared is None:  # a bulk upload, or text timestamps: the pipeline (in a worker thread)
        frame = events_frame(batch.events, now_ms)
        report = await anyio.to_thread.run_sync(
            lambda: ingest("events", frame, store=state.store, settings=state.settings)
        )
        result = ingest_result(report, ids)
    else:
        stored = await state.events.write_async(prepared.rows) if prepared.rows else set()
        result = _batch_result(prepared, len(stored), ids, time.perf_counter() - started)
    _count(state, result)
    return json_response(result)


def _with_time(event: EventIn, now_ms: int) -> dict[str, Any]:
    row = event.model_dump()
    if row["timestamp"] is None:
        row["timestamp"] = now_ms
    return row


def _batch_result(prepared: PreparedEvents, stored: int, ids: list[str | None], seconds: float) -> dict[str, Any]:
    """The answer for a batch of the row path, shaped like :func:`ingest_result`."""
    rejects = [
        {"index": index, "id": ids[index], "field": field, "reason": reason}
        for index, field, reason in prepared.rejects
    ]
    rejected = len(prepared.rejects)
    return {
        "received": prepared.read,
        "accepted": stored,
        "inserted": stored,
        "updated": 0,
        "rejected": rejected,
        "duplicates": prepared.read - rejected - stored,
        "flagged_bots": 0,
        "rejects": rejects,
        "seconds": round(seconds, 4),
    }


def _count(state: ServiceState, result: dict[str, Any]) -> None:
    state.metrics.inc("shoplm_events_accepted_total", result["accepted"])
    state.metrics.inc("shoplm_events_rejected_total", result["rejected"])
    state.metrics.inc("shoplm_events_duplicate_total", result["duplicates"])
