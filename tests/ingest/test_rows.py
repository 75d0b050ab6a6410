"""The row path of small event batches gives what the pandas pipeline gives: same rows stored, same rejects."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoplm.config import Settings
from shoplm.ingest.pipeline import ingest
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.ingest.rows import prepare_events
from shoplm.store import Store

NOW_MS = 1_800_000_000_000
COLUMNS = ("event_id", "user_id", "item_id", "event_type", "timestamp", "session_id", "scene", "query", "value")

texts = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "a", " b ", "E1", "e1", "x" * 129, "mail ann@example.com", "call 13800138000", "中文"]),
)
timestamps = st.one_of(
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20),
    st.sampled_from([1.7e9, 1_700_000_000_000, 1_700_000_000_000.0, 631_151_999_999, NOW_MS / 1000 + 1e6, 9.6e13]),
)
events = st.fixed_dictionaries(
    {
        "event_id": st.one_of(st.none(), st.sampled_from(["", "e1", "e2", " e1 ", "y" * 129])),
        "user_id": st.sampled_from(["U1", "U2", " U1", "", "z" * 129]),
        "item_id": texts,
        "event_type": st.sampled_from(["view", "VIEW", "search", "rate", "purchase", "jump", "", " click "]),
        "timestamp": timestamps,
        "session_id": texts,
        "scene": texts,
        "query": texts,
        "value": st.one_of(st.none(), st.sampled_from([0.0, 1.0, 3.5, 5.0, 5.5, -2.0, 1e12])),
    }
)


def _frame(batch: list[dict[str, Any]]) -> pd.DataFrame:
    # As the events route builds its frame for the pipeline.
    rows = [{c: ("" if e[c] is None and c != "value" else e[c]) for c in COLUMNS} for e in batch]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(events, min_size=1, max_size=6))
def test_the_row_path_stores_and_refuses_exactly_what_the_pipeline_does(batch: list[dict[str, Any]]) -> None:
    shop = Settings(data_dir="/nonexistent-unused", pseudonymization_key="k", ingest={"future_tolerance_seconds": 300})
    prepared = prepare_events(
        batch, Pseudonymizer(b"k"), now_ms=NOW_MS, future_tolerance_ms=300_000, bot_burst_events=30
    )
    assert prepared is not None
    store = Store.open("sqlite://")
    try:
        import shoplm.ingest.pipeline as pipeline

        original = pipeline.time.time
        pipeline.time.time = lambda: NOW_MS / 1000  # type: ignore[assignment]  # the same "now"
        try:
            report = ingest("events", _frame(batch), store=store, settings=shop)
        finally:
            pipeline.time.time = original  # type: ignore[assignment]
        stored = store.frame("events").drop(columns=[]).to_dict("records")
    finally:
        store.close()
    expected_rejects = [(int(r.line) - 1, r.field, r.reason) for r in report.rejects.itertuples(index=False)]
    assert prepared.rejects == expected_rejects
    assert prepared.read == report.read
    by_id = {row["event_id"]: row for row in stored}
    assert [r["event_id"] for r in prepared.rows] == [r["event_id"] for r in stored]
    for row in prepared.rows:
        theirs = by_id[row["event_id"]]
        assert all(_same(row[c], theirs[c]) or (row[c] is None and theirs[c] is None) for c in row), (row, theirs)
    assert report.accepted == len(prepared.rows)


def test_text_timestamps_and_large_batches_take_the_pipeline() -> None:
    p = Pseudonymizer(b"k")
    one = {"user_id": "U1", "item_id": "I1", "event_type": "view"}
    assert prepare_events([{**one, "timestamp": "2026-01-01T00:00:00Z"}], p, now_ms=NOW_MS,
                          future_tolerance_ms=0, bot_burst_events=30) is None  # fmt: skip
    assert prepare_events([{**one, "timestamp": 1.7e9}] * 30, p, now_ms=NOW_MS,
                          future_tolerance_ms=0, bot_burst_events=30) is None  # fmt: skip
