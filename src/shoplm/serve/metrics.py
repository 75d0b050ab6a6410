"""Prometheus metrics of the service, through ``prometheus_client``, across every worker process.

Request counts and latency histograms are labelled by method, route template (never the raw
path: ids in paths would make a series per user) and status. ``shoplm serve`` runs several
worker processes; it points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before starting
them, so every worker writes its samples there (prometheus_client's multiprocess mode) and
``/metrics``, answered by any worker, sums the counters of all of them and lists each live
worker's gauges with its ``pid``. Without that variable (a single process, tests) the metrics
live in the app's own registry.

Example:
    >>> metrics = Metrics()
    >>> metrics.observe("GET", "/v1/recommendations", 200, 0.004)
    >>> 'route="/v1/recommendations"' in metrics.render().decode()
    True
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

#: Latency bucket bounds in seconds: fine below 25 ms, where the service's targets are.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Counters the routes increment by name (``inc("shoplm_events_accepted_total")``).
COUNTERS: dict[str, str] = {
    "shoplm_events_accepted_total": "Events stored.",
    "shoplm_events_rejected_total": "Events refused by validation.",
    "shoplm_events_duplicate_total": "Events received again (idempotent by id) and not stored twice.",
    "shoplm_rate_limited_total": "Requests refused by a key's rate limit.",
    "shoplm_assistant_turns_total": "Customer messages the assistant answered.",
    "shoplm_assistant_escalations_total": "Conversations handed to a colleague.",
}


def multiprocess_dir() -> Path | None:
    """The shared metrics directory of a multi-worker server, or None in a single process."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class Metrics:
    """The service's metrics: HTTP requests, named counters and the live model's gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.shared = multiprocess_dir()
        labels = ("method", "route", "status")
        self.requests = Counter(
            "shoplm_http_requests",
            "HTTP requests answered, by method, route and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "shoplm_http_request_duration_seconds",
            "Time from request to the end of the answer.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.counters = {
            name: Counter(name.removesuffix("_total"), text, registry=self.registry) for name, text in COUNTERS.items()
        }
        # Gauges are per worker (each loads its own copy of the models): "liveall" keeps each live
        # worker's value with its pid label in multiprocess mode.
        self.model_version = Gauge(
            "shoplm_model_version_info",
            "The live model version (value 1).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_loaded = Gauge(
            "shoplm_model_loaded", "1 when models are loaded.", registry=self.registry, multiprocess_mode="liveall"
        )
        self.model_reloads = Gauge(
            "shoplm_model_reloads",
            "Model versions swapped in since the worker started.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.started = Gauge(
            "shoplm_started_timestamp_seconds",
            "When the worker started.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.started.set(time.time())
        self._version: str | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def inc(self, name: str, amount: float = 1.0) -> None:
        """Add to one of the :data:`COUNTERS`."""
        if amount:
            self.counters[name].inc(amount)

    def models(self, version: str | None, reloads: int) -> None:
        """Say which model version this worker serves."""
        if self._version is not None and self._version != version:
            self.model_version.remove(self._version)
        if version is not None:
            self.model_version.labels(version).set(1)
        self._version = version
        self.model_loaded.set(float(version is not None))
        self.model_reloads.set(reloads)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (every worker's, in multiprocess mode)."""
        if self.shared is None:
            return generate_latest(self.registry)
        _forget_dead_workers(self.shared)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=str(self.shared))
        return generate_latest(registry)

    def close(self) -> None:
        """A worker that stops takes its gauges with it."""
        if self.shared is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), path=str(self.shared))


_GAUGE_FILE = re.compile(r"^gauge_(?:live\w*)_(\d+)\.db$")


def _forget_dead_workers(directory: Path) -> None:
    """Drop the per-worker gauge files of workers that died without stopping (SIGKILL, a crash)."""
    for path in directory.glob("gauge_live*_*.db"):
        found = _GAUGE_FILE.match(path.name)
        if found and not _alive(int(found.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
