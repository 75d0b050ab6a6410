"""The FastAPI application: routers per domain, auth, limits, metrics, hot model reload.

Example:
    >>> from fastapi.testclient import TestClient                    # doctest: +SKIP
    >>> app = create_app(Settings(data_dir="shop-data"))             # doctest: +SKIP
    >>> with TestClient(app) as client:                              # doctest: +SKIP
    ...     client.get("/healthz").json()
    {'status': 'ok'}
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shoplm import __version__
from shoplm.app.events import EventWriter
from shoplm.app.scheduler import Scheduler
from shoplm.config import Settings
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve.auth import KeyStore, RateLimiter, SessionStore
from shoplm.serve.chat import LiveAssistant
from shoplm.serve.deps import ServiceState, single_query_values
from shoplm.serve.errors import BodyTooLarge, error_body, install_error_handlers
from shoplm.serve.live import LiveModels
from shoplm.serve.metrics import Metrics, MetricsMiddleware
from shoplm.serve.routers import (
    ads,
    assistant,
    catalog,
    ctr,
    customers,
    dashboard,
    dashboard_ads,
    dashboard_analytics,
    dashboard_aspects,
    dashboard_ctr,
    dashboard_experiments,
    dashboard_opinion,
    dashboard_replies,
    dashboard_sentiment,
    erasure,
    events,
    experiments,
    forecast,
    health,
    insight_aspects,
    insight_opinion,
    insight_sentiment,
    jobs,
    openai,
    pricing,
    recommendations,
    reports,
    review_replies,
    risk,
    segments,
    users,
)
from shoplm.store import Store

log = logging.getLogger("shoplm.serve")

#: The interpreter's switch interval in a worker (seconds). Measured under recommendations at
#: 200/s plus events at 100/s on 2 cores: 0.2 ms took the events' p99 from 31 ms to 24 ms
#: against 1 ms (the default 5 ms is worse still); the extra switches cost the compute little.
SWITCH_INTERVAL = 0.0002

#: The routers of every capability, mounted in this order; a new domain adds its module here.
ROUTERS = (
    events.router,
    catalog.router,
    recommendations.router,
    users.router,
    erasure.router,
    customers.router,
    segments.router,
    pricing.router,
    risk.router,
    reports.router,
    forecast.router,
    assistant.router,
    openai.router,
    jobs.router,
    experiments.router,
    insight_sentiment.router,
    insight_aspects.router,
    ads.router,
    review_replies.router,
    insight_opinion.router,
    ctr.router,
    health.router,
    dashboard.router,
    dashboard_analytics.router,
    dashboard_ctr.router,
    dashboard_ads.router,
    dashboard_sentiment.router,
    dashboard_aspects.router,
    dashboard_replies.router,
    dashboard_experiments.router,
    dashboard_opinion.router,
)


class BodySizeLimitMiddleware:
    """413 for request bodies above ``limit`` bytes: by ``Content-Length`` up front, else while reading."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await _send_json(
                        send, 413, error_body("payload_too_large", f"request body larger than {self.limit:,} bytes")
                    )
                    return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)  # an HTTP error: the app's handler answers 413
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The service for one shop; opens the store at ``settings.database_url`` unless given one.

    Starting the app (its lifespan) loads the live model version and the assistant off the
    event loop, starts the model watcher, the refresh scheduler and the event writer; stopping
    it stops them.

    Args:
        settings: the shop's settings (``server.*`` for limits and CORS).
        store: an open store to use (default: opened here, and closed when the app stops).

    Returns:
        The FastAPI app; ``app.state.shoplm`` is its :class:`ServiceState`.
    """
    owns_store = store is None
    # WAL checkpoints in a background thread: no acknowledged event waits for one (SQLite files).
    opened = (
        store
        if store is not None
        else Store.open(settings.database_url, background_checkpoints=1.0, pool=settings.database)
    )
    metrics = Metrics()
    server = settings.server
    live = LiveModels(opened, settings, on_change=lambda: metrics.models(live.version, live.reloads))
    keys = KeyStore(opened)
    state = ServiceState(
        settings=settings,
        store=opened,
        keys=keys,
        limiter=RateLimiter(
            server.rate_limit_per_second, server.rate_limit_burst, path=settings.data_dir / "run" / "ratelimit.bin"
        ),
        metrics=metrics,
        live=live,
        sessions=SessionStore(opened, server.session_hours, keys=keys),
        assistant=LiveAssistant(opened, settings, live),  # loaded by the lifespan, after the recommender
        events=EventWriter(opened),
        pseudonymizer=Pseudonymizer(settings.hmac_key),
        owns_store=owns_store,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.events.start()
        # Loading models takes about a second: a worker thread keeps the event loop free meanwhile.
        try:
            await anyio.to_thread.run_sync(state.live.load)
        except Exception as exc:  # serve events and health anyway; /readyz says why models are missing
            state.live.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the models at start")
        try:
            await anyio.to_thread.run_sync(state.assistant.load)
        except Exception as exc:  # the other routes serve anyway; the assistant's answer 503 with the reason
            state.assistant.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the assistant at start")
        state.live.start()
        # Scheduled jobs run in whichever worker process holds the store's lease (one at a time).
        scheduler = Scheduler(state.store, settings) if settings.scheduler.in_server else None
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            state.live.stop()
            state.events.stop()
            state.limiter.close()
            state.metrics.close()
            if state.owns_store:
                state.store.close()

    app = FastAPI(
        title="shoplm",
        version=__version__,
        description=(
            "Recommendations, profiles, events and the customer-service assistant of one shop. Every "
            "route but the health checks needs an API key (`X-API-Key` or `Authorization: Bearer`); "
            "scopes are read < write < admin."
        ),
        lifespan=lifespan,
        dependencies=[Depends(single_query_values)],
        docs_url=None,  # served below from the package's own copy of Swagger UI, not a CDN
        redoc_url=None,
    )
    app.state.shoplm = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _local_docs(app)
    # Middleware wraps in reverse order of adding: metrics outermost, so a 413 is counted too.
    app.add_middleware(BodySizeLimitMiddleware, limit=server.max_body_bytes)
    if server.cors_origins:  # off unless an allow-list is configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=server.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one worker process of ``shoplm serve``: settings from the environment it set.

    ``shoplm serve`` puts ``--data-dir``, ``--host`` and ``--port`` into ``SHOPLM_*`` variables
    before it starts the workers, so each worker builds the same :class:`Settings`. A worker also
    asks the kernel to stop it when the server process dies, so no worker outlives its server.
    """
    stop_with_parent()
    # Answers are computed in a worker thread while the event loop acknowledges events: let the
    # loop take the interpreter lock back within 0.2 ms rather than the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    return create_app(Settings())


def stop_with_parent() -> None:
    """Have this process get SIGTERM when its parent dies (Linux; elsewhere nothing happens)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request reached the kernel
        os.kill(os.getpid(), signal.SIGTERM)


STATIC_DIR = Path(__file__).resolve().parent / "static"


def _local_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI from the package (a shop may be offline), as FastAPI's docs describe."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )
