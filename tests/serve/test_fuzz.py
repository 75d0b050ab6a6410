"""Schemathesis against the running server's own OpenAPI spec, with every check, on several workers.

Each operation gets schema-valid requests (which must be accepted and answered as documented)
and schema-violating ones (which must be refused); every answer must have a documented status,
content type and shape, and none may be a 5xx or take more than ``CALL_SECONDS``. The number of
examples is bounded so the suite stays within its time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.serve.conftest import ServerProcess, Shop

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402

pytestmark = pytest.mark.slow

#: Examples per operation and generation mode: enough to hit empty, huge, unicode and wrong-typed values, yet fast.
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 25, schemathesis.GenerationMode.NEGATIVE: 15}
#: Fewer for the assistant's turns, the slowest calls (a 10,000-character message is valid).
FEWER = {"POST /v1/assistant/messages", "POST /v1/chat/completions"}
#: No single call may take longer than this (a hang fails the test).
CALL_SECONDS = 10.0


def test_every_check_passes_on_generated_requests(
    shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(shop_copy).start()  # two workers
    server.wait_for_workers()
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    load_all_checks()
    checks = list(CHECKS.get_all())
    headers = {"X-API-Key": shop.keys["admin"]}
    problems: list[str] = []
    calls = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():

            @settings(
                max_examples=max(3, examples // 3) if operation.label in FEWER else examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                nonlocal calls
                began = time.monotonic()
                response = case.call(base_url=server.url, headers=headers, timeout=30)
                calls += 1
                took = time.monotonic() - began
                label = f"{case.method} {case.formatted_path} {case.query or ''} ({case.meta.generation.mode.value})"
                if took > CALL_SECONDS:
                    problems.append(f"{label} took {took:.1f} s")
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except (AssertionError, FailureGroup) as failure:  # every failed check at once
                    problems.append(f"{label} -> {response.status_code}: {str(failure)[:500]}")

            try:
                run()
            except Unsatisfiable:
                # An operation with nothing a request could get wrong (no parameters, no body).
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
    print(f"{calls} calls in {time.monotonic() - started:.0f} s")
    assert calls >= 200
    assert not problems, "\n".join(problems[:10])
