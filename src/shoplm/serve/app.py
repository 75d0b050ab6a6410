"""The FastAPI application: routers per domain, auth, limits, metrics, hot model reload.

Example:
    >>> from fastapi.testclient import TestClient                    # doctest: +SKIP
    >>> app = create_app(Settings(data_dir="shop-data"))             # doctest: +SKIP
    >>> with TestClient(app) as client:                              # doctest: +SKIP
    ...     client.get("/healthz").json()
    {'status': 'ok'}
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from shoplm import __version__
from shoplm.config import Settings
from shoplm.serve.auth import KeyStore, RateLimiter, SessionStore
from shoplm.serve.chat import LiveAssistant
from shoplm.serve.deps import ServiceState
from shoplm.serve.errors import BodyTooLarge, error_body, install_error_handlers
from shoplm.serve.live import LiveModels
from shoplm.serve.metrics import Metrics, MetricsMiddleware
from shoplm.serve.routers import assistant, catalog, dashboard, events, health, recommendations, users
from shoplm.store import Store

log = logging.getLogger("shoplm.serve")

#: The routers of every capability, mounted in this order; a new domain adds its module here.
ROUTERS = (
    events.router,
    catalog.router,
    recommendations.router,
    users.router,
    assistant.router,
    health.router,
    dashboard.router,
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

    Starting the app (its lifespan) loads the live model version off the event loop, starts
    the model watcher and the refresh scheduler; stopping it stops them.
    """
    owns_store = store is None
    opened = store if store is not None else Store.open(settings.database_url)
    metrics = Metrics()
    server = settings.server
    live = LiveModels(opened, settings)
    state = ServiceState(
        settings=settings,
        store=opened,
        keys=KeyStore(opened),
        limiter=RateLimiter(server.rate_limit_per_second, server.rate_limit_burst),
        metrics=metrics,
        live=live,
        sessions=SessionStore(server.session_hours),
        owns_store=owns_store,
        assistant=LiveAssistant(opened, settings, live),  # loaded by the lifespan, after the recommender
    )
    metrics.gauge(lambda: _model_gauges(state))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Loading models takes seconds: a worker thread keeps the event loop free meanwhile.
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
        try:
            yield
        finally:
            state.live.stop()
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
    )
    app.state.shoplm = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
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


def _model_gauges(state: ServiceState) -> list[tuple[str, str, dict[str, str], float]]:
    live = state.live
    rows: list[tuple[str, str, dict[str, str], float]] = []
    if live.version is not None:
        rows.append(("shoplm_model_version_info", "The live model version (value 1).", {"version": live.version}, 1.0))
    rows.append(("shoplm_model_loaded", "1 when models are loaded.", {}, float(live.version is not None)))
    rows.append(("shoplm_model_reloads", "Model versions swapped in since start.", {}, float(live.reloads)))
    if live.loaded_at is not None:
        rows.append(("shoplm_model_loaded_timestamp_seconds", "When the live models were loaded.", {}, live.loaded_at))
    return rows
