"""Prometheus metrics in the text exposition format, without a client library.

Request counts and latency histograms are labelled by method, route template (never the raw
path: ids in paths would make a series per user) and status; the live model version is a
labelled gauge.

Example:
    >>> metrics = Metrics()
    >>> metrics.observe("GET", "/v1/recommendations", 200, 0.004)
    >>> 'route="/v1/recommendations"' in metrics.render()
    True
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

#: Latency bucket bounds in seconds: fine below 25 ms, where the service's targets are.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Metrics:
    """Counters and histograms of HTTP requests plus gauges read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], list[Any]] = {}  # -> [count, sum, bucket counts]
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._gauges: list[Callable[[], list[tuple[str, str, dict[str, str], float]]]] = []
        self.started = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        key = (method, route, str(status))
        index = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                entry = self._counts[key] = [0, 0.0, [0] * (len(BUCKETS) + 1)]
            entry[0] += 1
            entry[1] += seconds
            entry[2][index] += 1

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter ``name`` (created on first use)."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def gauge(self, read: Callable[[], list[tuple[str, str, dict[str, str], float]]]) -> None:
        """Register a function returning ``(name, help, labels, value)`` rows at scrape time."""
        self._gauges.append(read)

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        lines = [
            "# HELP shoplm_http_requests_total HTTP requests answered, by method, route and status.",
            "# TYPE shoplm_http_requests_total counter",
        ]
        with self._lock:
            counts = {k: (v[0], v[1], list(v[2])) for k, v in self._counts.items()}
            counters = dict(self._counters)
        for (method, route, status), (count, _total, _buckets) in sorted(counts.items()):
            lines.append(f"shoplm_http_requests_total{_labels(method=method, route=route, status=status)} {count}")
        lines += [
            "# HELP shoplm_http_request_duration_seconds Time from request to the end of the answer.",
            "# TYPE shoplm_http_request_duration_seconds histogram",
        ]
        for (method, route, status), (count, total, buckets) in sorted(counts.items()):
            cumulative = 0
            for bound, n in zip([*BUCKETS, float("inf")], buckets, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                labels = _labels(method=method, route=route, status=status, le=le)
                lines.append(f"shoplm_http_request_duration_seconds_bucket{labels} {cumulative}")
            labels = _labels(method=method, route=route, status=status)
            lines.append(f"shoplm_http_request_duration_seconds_sum{labels} {total:.6f}")
            lines.append(f"shoplm_http_request_duration_seconds_count{labels} {count}")
        seen: set[str] = set()
        for (name, label_items), value in sorted(counters.items()):
            if name not in seen:
                lines += [f"# TYPE {name} counter"]
                seen.add(name)
            lines.append(f"{name}{_labels(**dict(label_items)) if label_items else ''} {value:g}")
        for read in self._gauges:
            for name, help_text, labels, value in read():
                if name not in seen:
                    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
                    seen.add(name)
                lines.append(f"{name}{_labels(**labels) if labels else ''} {value:g}")
        lines += [
            "# HELP shoplm_uptime_seconds Seconds since the service started.",
            "# TYPE shoplm_uptime_seconds gauge",
            f"shoplm_uptime_seconds {time.time() - self.started:.1f}",
        ]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request (cheaper than ``BaseHTTPMiddleware``)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The template (/v1/users/{user_id}/profile), not the path; unmatched paths share one series.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
