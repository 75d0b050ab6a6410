"""The same ingest of events, row by row: for the handful of events one HTTP request carries.

:func:`~shoplm.ingest.pipeline.ingest` is built for files: every step is a pandas operation
over a chunk of 50,000 rows, which costs about a hundred pandas calls (10-15 ms) whatever the
chunk's size. An API request usually carries one event. :func:`prepare_events` applies the
same rules to such a batch in plain Python: the same checks and reasons per field (see
:mod:`shoplm.ingest.validate`), the same pseudonymization and masking, the same row ids and
values for the store (a property test holds the two paths to each other). What it does not
take (ISO-8601 text timestamps, batches large enough to hold a bot burst), it hands back as
None, and the caller uses the pipeline.

Example:
    >>> from shoplm.ingest.pseudonymize import Pseudonymizer
    >>> event = {"user_id": "U1", "item_id": "I1", "event_type": "VIEW", "timestamp": 1.7e9}
    >>> batch = prepare_events([event], Pseudonymizer(b"k"), now_ms=1_800_000_000_000,
    ...                        future_tolerance_ms=0, bot_burst_events=30)
    >>> batch.rows[0]["event_type"], batch.rows[0]["ts_ms"], batch.rejects
    ('view', 1700000000000, [])
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoplm.ingest.pseudonymize import Pseudonymizer, mask_pii
from shoplm.ingest.schemas import EVENTS, FieldSpec
from shoplm.ingest.validate import MAX_ID_LENGTH, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS

#: Batches up to this size take the row path (larger ones are files or bulk uploads).
MAX_ROWS = 64
_HASHED = ("user_id", "item_id", "event_type", "ts_ms", "session_id", "query")


@dataclass
class EventBatch:
    """A batch ready for the store: rows in batch order (one per event id, the last wins) and the refused rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (position, first field, all reasons)
    read: int = 0

    @property
    def accepted_in(self) -> int:
        """Valid rows, before those repeating an id within the batch are folded."""
        return self.read - len(self.rejects)


def prepare_events(
    events: Sequence[Mapping[str, Any]],
    pseudonymizer: Pseudonymizer,
    *,
    now_ms: int,
    future_tolerance_ms: int,
    bot_burst_events: int,
) -> EventBatch | None:
    """Validate, pseudonymize and shape events as the ingest pipeline does, or None when it must.

    Args:
        events: one mapping per event with the ``events`` fields (``timestamp``: epoch seconds
            or milliseconds as a number; missing text as None or "").
        pseudonymizer: the shop's keyed pseudonymizer.
        now_ms: the time of the request (the "in the future" check).
        future_tolerance_ms: how far in the future a timestamp may be.
        bot_burst_events: the pipeline's burst size; a batch this large takes the pipeline.

    Returns:
        The batch, or None when the pipeline must take it (too many rows, text timestamps).
    """
    if len(events) > MAX_ROWS or len(events) >= bot_burst_events:
        return None
    if any(isinstance(e.get("timestamp"), str | bytes | bool) for e in events):
        return None  # ISO-8601 text is parsed by pandas in the pipeline: one parser, one answer
    batch = EventBatch(read=len(events))
    good: list[dict[str, Any]] = []
    # One float timestamp makes the pipeline's column float, and then every timestamp one.
    floats = any(isinstance(e.get("timestamp"), float) for e in events)
    for position, event in enumerate(events):
        values: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for spec in EVENTS.fields:
            raw = event.get(spec.name)
            if spec.type == "timestamp" and floats and raw is not None:
                raw = float(raw)
            values[spec.name] = _check(spec, raw, problems, now_ms, future_tolerance_ms)
        if values["event_type"] != "search" and values["item_id"] == "":
            problems.append(("item_id", "required for this event type"))
        value = values["value"]
        if values["event_type"] == "rate" and not (value is not None and 1 <= value <= 5):
            problems.append(("value", "a 'rate' event needs a value from 1 to 5"))
        if problems:
            batch.rejects.append((position, problems[0][0], "; ".join(f"{f}: {r}" for f, r in problems)))
        else:
            good.append(values)
    rows: dict[str, dict[str, Any]] = {}
    for values in good:
        row = _store_row(values, pseudonymizer)
        rows.pop(row["event_id"], None)  # the last row of an id wins, in its own place
        rows[row["event_id"]] = row
    batch.rows = list(rows.values())
    return batch


def _text(raw: Any) -> str:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    return str(raw).strip()


def _check(spec: FieldSpec, raw: Any, problems: list[tuple[str, str]], now_ms: int, tolerance_ms: int) -> Any:
    name = spec.name
    if spec.type in ("id", "text", "enum"):
        text = _text(raw)
        if spec.required and not text:
            problems.append((name, "required but empty"))
        if spec.type == "id" and len(text) > MAX_ID_LENGTH:
            problems.append((name, f"longer than {MAX_ID_LENGTH} characters"))
        elif spec.type == "enum":
            text = text.lower()
            if text and text not in spec.choices:
                problems.append((name, f"unknown value '{text[:40]}' (expected one of {', '.join(spec.choices)})"))
        return text
    if spec.type == "float":
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        number = float(raw)
        if not math.isfinite(number):
            problems.append((name, "not a finite number"))
        return number
    # timestamp: a number (text was sent to the pipeline)
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        if spec.required:
            problems.append((name, "required but empty"))
        return 0
    number = float(raw)
    scaled = number * 1000.0 if abs(number) < 1e11 else number
    if not (math.isfinite(scaled) and abs(scaled) < MAX_TIMESTAMP_MS):
        shown = _text(raw).removesuffix(".0") if isinstance(raw, float) else _text(raw)
        problems.append((name, f"not a timestamp (use ISO-8601 or epoch seconds): '{shown[:40]}'"))
        return 0
    ms = int(scaled)
    if ms > now_ms + tolerance_ms:
        problems.append((name, "in the future: " + str(np.datetime_as_string(np.datetime64(ms, "ms"), unit="s"))))
    if ms < MIN_TIMESTAMP_MS:
        problems.append((name, "before 1990 (epoch in the wrong unit?)"))
    return ms


def _store_row(values: dict[str, Any], p: Pseudonymizer) -> dict[str, Any]:
    row: dict[str, Any] = {
        "user_id": p.user(values["user_id"]),
        "item_id": values["item_id"] or None,
        "event_type": values["event_type"],
        "scene": values["scene"],
        "query": mask_pii(values["query"]),
        "value": values["value"],
        "ts_ms": values["timestamp"],
        "session_id": values["session_id"],
        "suspected_bot": False,  # a burst needs more events than this path takes
    }
    event_id = values["event_id"]
    if not event_id:
        joined = "\x1f".join("" if row[c] is None else str(row[c]) for c in _HASHED)
        event_id = "h_" + hashlib.blake2b(joined.encode(), digest_size=16).hexdigest()[:24]
    return {"event_id": event_id, **row}
