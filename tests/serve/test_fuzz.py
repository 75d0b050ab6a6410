"""Schemathesis against the app's own OpenAPI spec: no 5xx, no hang, with a valid key (bounded examples)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from shoplm.serve import create_app
from tests.serve.conftest import Shop

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

pytestmark = pytest.mark.slow

#: Examples per operation: enough to hit empty, huge, unicode and wrong-typed values, yet fast.
EXAMPLES = 25
#: Fewer for the assistant's turns, the slowest calls (a 10,000-character message is valid).
EXAMPLES_BY_OPERATION = {"POST /v1/assistant/messages": 15}
#: No single call may take longer than this (a hang fails the test).
CALL_SECONDS = 10.0


def test_no_5xx_and_no_hang_on_generated_requests(shop: Shop, tmp_path: Path) -> None:
    shutil.copytree(shop.data_dir, tmp_path / "data")
    app = create_app(shop.settings(tmp_path / "data"))
    state = app.state.shoplm
    state.live.load()  # what the lifespan does; schemathesis's ASGI client does not run it
    state.assistant.load()  # what the lifespan does too
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"X-API-Key": shop.keys["admin"]}
    problems: list[str] = []
    calls = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_BY_OPERATION.get(operation.label, EXAMPLES),
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            began = time.monotonic()
            response = case.call(headers=headers)
            calls += 1
            took = time.monotonic() - began
            label = f"{case.method} {case.formatted_path} {case.query or ''}"
            if response.status_code >= 500:
                problems.append(f"{label} -> {response.status_code}: {response.text[:300]}")
            elif took > CALL_SECONDS:
                problems.append(f"{label} took {took:.1f} s")
            elif response.status_code >= 400:
                assert "error" in response.json(), label  # every error is the JSON error document

        began_operation = time.monotonic()
        run()
        print(f"{operation.label}: {time.monotonic() - began_operation:.1f} s")
    assert calls >= 100
    assert not problems, "\n".join(problems[:10])
    assert time.monotonic() - started < 300
    state.live.stop()
