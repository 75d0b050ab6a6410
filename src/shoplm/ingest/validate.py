"""Validation of one chunk of rows against a :class:`~shoplm.ingest.schemas.KindSpec`.

Vectorized over the chunk (pandas), so a million rows validate in seconds. Every rejected
row keeps *all* its problems as ``field: reason`` texts; good rows come back typed:
ids and text as ``str``, numbers as floats, timestamps as epoch milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoplm.ingest.schemas import FieldSpec, KindSpec

MAX_ID_LENGTH = 128
# Earliest timestamp accepted: catches epoch values in the wrong unit.
MIN_TIMESTAMP_MS = 631_152_000_000  # 1990-01-01
MAX_TIMESTAMP_MS = 95_617_584_000_000  # 5000-01-01
MAX_EXACT_INT = 2**53  # integers above this lose precision as floats


@dataclass
class Validated:
    """A chunk split in typed good rows and rejected rows with their reasons."""

    frame: pd.DataFrame  # good rows, typed, only the spec's columns
    good: np.ndarray  # bool mask over the input rows
    reasons: list[str]  # for every input row: "" or "field: reason; field: reason"
    first_field: list[str]  # the field of the first problem, per input row


class _Problems:
    def __init__(self, n: int) -> None:
        self.reasons = [""] * n
        self.fields = [""] * n

    def add(self, mask: np.ndarray, field: str, reasons: pd.Series | str) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        texts = [reasons] * len(rows) if isinstance(reasons, str) else reasons.to_numpy()[rows]
        for row, text in zip(rows, texts, strict=True):
            entry = f"{field}: {text}"
            self.reasons[row] = f"{self.reasons[row]}; {entry}" if self.reasons[row] else entry
            if not self.fields[row]:
                self.fields[row] = field

    @property
    def good(self) -> np.ndarray:
        return np.fromiter((not r for r in self.reasons), dtype=bool, count=len(self.reasons))


def as_text(values: pd.Series) -> pd.Series:
    """Strings, stripped, with missing values as ''."""
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.fillna("").astype(str)
    else:
        text = values.astype(object).where(values.notna(), "").astype(str)
        if pd.api.types.is_float_dtype(values):
            # 12.0 read from a typed column is the id "12", not "12.0".
            text = text.str.replace(r"\.0$", "", regex=True)
    return text.str.strip()


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.str.slice(0, 40) + "'"


def parse_timestamps(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Epoch milliseconds and a validity mask from ISO-8601 strings, datetimes or epoch numbers.

    Numbers below 1e11 are epoch seconds, larger ones milliseconds.
    """
    n = len(values)
    ms = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        ok = stamps.notna().to_numpy()
        ms[ok] = stamps[ok].dt.as_unit("ms").astype("int64").to_numpy()
        return ms, ok
    numbers = pd.to_numeric(values, errors="coerce")
    is_number = numbers.notna().to_numpy()
    if is_number.any():
        raw = numbers.to_numpy(dtype=np.float64)[is_number]
        scaled = np.where(np.abs(raw) < 1e11, raw * 1000.0, raw)
        # Beyond ~year 5000 a number is no timestamp (and would overflow int64 milliseconds).
        sane = np.isfinite(scaled) & (np.abs(scaled) < MAX_TIMESTAMP_MS)
        ms[is_number] = np.where(sane, scaled, 0).astype(np.int64)
        ok[is_number] = sane
    rest = ~is_number
    if rest.any():
        text = as_text(values[rest])
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        good = parsed.notna().to_numpy()
        idx = np.flatnonzero(rest)
        ms[idx[good]] = parsed[good].dt.as_unit("ms").astype("int64").to_numpy()
        ok[idx[good]] = True
    return ms, ok


def validate_chunk(frame: pd.DataFrame, spec: KindSpec, *, now_ms: int, future_tolerance_ms: int) -> Validated:
    """Check and type every field of ``frame``; see the module docstring."""
    n = len(frame)
    problems = _Problems(n)
    out: dict[str, object] = {}
    for field in spec.fields:
        present = field.name in frame.columns
        raw = frame[field.name] if present else pd.Series([""] * n, index=frame.index, dtype=object)
        out[field.name] = _validate_field(raw, field, problems, now_ms=now_ms, future_tolerance_ms=future_tolerance_ms)
    if spec.extra_to_attributes:
        for column in frame.columns:
            if column not in out:
                out[column] = as_text(frame[column])
    typed = pd.DataFrame(out, index=frame.index)
    _kind_rules(typed, spec, problems)
    good = problems.good
    return Validated(typed[good].reset_index(drop=True), good, problems.reasons, problems.fields)


def _validate_field(
    raw: pd.Series, field: FieldSpec, problems: _Problems, *, now_ms: int, future_tolerance_ms: int
) -> pd.Series | np.ndarray:
    name = field.name
    if field.type in ("id", "text", "enum", "json"):
        text = as_text(raw)
        empty = (text == "").to_numpy()
        if field.required:
            problems.add(empty, name, "required but empty")
        if field.type == "id":
            problems.add((text.str.len() > MAX_ID_LENGTH).to_numpy(), name, f"longer than {MAX_ID_LENGTH} characters")
        elif field.type == "enum":
            text = text.str.lower()
            bad = ~text.isin(field.choices).to_numpy() & ~empty
            problems.add(bad, name, "unknown value " + _quoted(text) + f" (expected one of {', '.join(field.choices)})")
        elif field.type == "json":
            text = text.where(~empty, "{}")
            parsed_ok = text.map(_is_json_object).to_numpy()
            problems.add(~parsed_ok, name, "not a JSON object")
        return text
    if field.type in ("int", "float"):
        text_missing = raw.isna() | (as_text(raw) == "") if raw.dtype == object else raw.isna()
        numbers = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        missing = text_missing.to_numpy()
        not_number = numbers.isna().to_numpy() & ~missing
        problems.add(not_number, name, "not a number: " + _quoted(as_text(raw)))
        if field.required:
            problems.add(missing, name, "required but empty")
        values = numbers.to_numpy()
        finite = np.isfinite(values)
        problems.add(~finite & ~np.isnan(values), name, "not a finite number")
        if field.type == "int":
            problems.add(finite & (values != np.round(values)), name, "not a whole number: " + numbers.astype(str))
            problems.add(finite & (np.abs(values) > MAX_EXACT_INT), name, "too large")
        if field.min_value is not None:
            problems.add(finite & (values < field.min_value), name, _range_text(numbers, field))
        if field.max_value is not None:
            problems.add(finite & (values > field.max_value), name, _range_text(numbers, field))
        return numbers
    # timestamp
    ms, ok = parse_timestamps(raw)
    if pd.api.types.is_datetime64_any_dtype(raw):
        missing = raw.isna().to_numpy()
    else:
        missing = (raw.isna() | (as_text(raw) == "")).to_numpy()
    if field.required:
        problems.add(missing, name, "required but empty")
    problems.add(~ok & ~missing, name, "not a timestamp (use ISO-8601 or epoch seconds): " + _quoted(as_text(raw)))
    future = ok & (ms > now_ms + future_tolerance_ms)
    if future.any():
        # numpy's millisecond datetimes reach far past pandas' year-2262 limit.
        shown = pd.Series(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s"), index=raw.index)
        problems.add(future, name, "in the future: " + shown)
    problems.add(ok & (ms < MIN_TIMESTAMP_MS), name, "before 1990 (epoch in the wrong unit?)")
    return pd.Series(np.where(ok, ms, 0), index=raw.index, dtype=np.int64)


def _range_text(numbers: pd.Series, field: FieldSpec) -> pd.Series:
    if field.min_value is not None and field.max_value is not None:
        limits = f"outside {field.min_value:g}-{field.max_value:g}"
    elif field.min_value is not None:
        limits = "negative" if field.min_value == 0 else f"below {field.min_value:g}"
    else:
        limits = f"above {field.max_value:g}"
    return limits + ": " + numbers.map(lambda v: f"{v:g}")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (json.JSONDecodeError, TypeError):
        return False


def _kind_rules(typed: pd.DataFrame, spec: KindSpec, problems: _Problems) -> None:
    """Rules across fields of one kind."""
    if spec.kind == "events":
        needs_item = (typed["event_type"] != "search").to_numpy()
        problems.add(needs_item & (typed["item_id"] == "").to_numpy(), "item_id", "required for this event type")
        is_rate = (typed["event_type"] == "rate").to_numpy()
        value = typed["value"].to_numpy()
        bad_rating = is_rate & ~((value >= 1) & (value <= 5))
        problems.add(bad_rating, "value", "a 'rate' event needs a value from 1 to 5")
