"""``POST /v1/events``: behaviour events in, acknowledged only once committed."""

from __future__ import annotations

import time

import pandas as pd
from fastapi import APIRouter, Depends, Request

from shoplm.ingest.pipeline import IngestReport, ingest
from shoplm.serve.deps import get_state, require
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


def ingest_result(report: IngestReport, ids: list[str | None]) -> dict[str, object]:
    """An :class:`IngestReport` as the API's answer; rejected rows point at their batch position."""
    rejects = []
    for row in report.rejects.itertuples(index=False):
        index = int(row.line) - 1  # a DataFrame source numbers rows from 1
        rejects.append(
            RejectedRow(
                index=index, id=ids[index] if 0 <= index < len(ids) else None, field=row.field, reason=row.reason
            )
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
def post_events(batch: EventBatch, request: Request) -> dict[str, object]:
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
    frame = events_frame(batch.events)
    with state.write_lock:
        report = ingest("events", frame, store=state.store, settings=state.settings)
    state.metrics.inc("shoplm_events_accepted_total", report.accepted)
    state.metrics.inc("shoplm_events_rejected_total", report.rejected)
    state.metrics.inc("shoplm_events_duplicate_total", report.duplicates)
    return ingest_result(report, [e.event_id for e in batch.events])
