"""Dependencies shared by the routers: the service state, API-key auth with scopes, the live models.

They are ``async``: each is a few dictionary lookups (a verified key is cached in memory), and
a plain ``def`` dependency would cost every request a hop to a worker thread and back.

Example (a router of a later capability plugs in the same way):
    >>> from fastapi import APIRouter, Depends
    >>> router = APIRouter(prefix="/v1/reviews", dependencies=[Depends(require("read"))])
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import orjson
from fastapi import Depends, Request, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shoplm.app.experiments import RunningExperiments
from shoplm.app.insights import Insights
from shoplm.app.recommender import ShopRecommender
from shoplm.config import Settings
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve.auth import ApiKey, KeyStore, RateLimiter, SessionStore, scope_allows
from shoplm.serve.chat import LiveAssistant
from shoplm.serve.errors import ApiError
from shoplm.serve.live import LiveModels
from shoplm.serve.metrics import Metrics
from shoplm.store import Store

if TYPE_CHECKING:
    from shoplm.app.events import EventWriter


@dataclass
class ServiceState:
    """Everything a request needs, made once per app (``app.state.shoplm``)."""

    settings: Settings
    store: Store
    keys: KeyStore
    limiter: RateLimiter
    metrics: Metrics
    live: LiveModels
    sessions: SessionStore
    #: The customer-service assistant, loaded at start (see :mod:`shoplm.serve.chat`).
    assistant: LiveAssistant
    #: Commits events of concurrent requests together (see :mod:`shoplm.app.events`).
    events: EventWriter
    #: The shop's keyed pseudonymizer (user ids of incoming events).
    pseudonymizer: Pseudonymizer
    owns_store: bool = False
    _compute_limiter: anyio.CapacityLimiter | None = None

    def compute_limiter(self) -> anyio.CapacityLimiter:
        """Worker threads computing answers at once (call it in the event loop: anyio ties a limiter to it).

        One: a second thread only takes turns with the first on the interpreter lock, and each
        turn it takes delays the event loop (measured with recommendations at 200/s and events at
        100/s: events p99 18-20 ms with one thread, 31 ms with two). The other workers compute
        in parallel.
        """
        if self._compute_limiter is None:
            self._compute_limiter = anyio.CapacityLimiter(1)
        return self._compute_limiter


def get_state(request: Request) -> ServiceState:
    return request.app.state.shoplm  # type: ignore[no-any-return]


def json_response(payload: Any, status_code: int = 200) -> Response:
    """An answer already shaped as its response model: serialized once, with orjson, not validated again."""
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (`shoplm keys create`)")
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")


async def authenticate(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> ApiKey:
    """The caller's key from ``X-API-Key`` or ``Authorization: Bearer``; 401 without a valid one."""
    secret = api_key or (bearer.credentials if bearer is not None else None)
    if not secret:
        raise ApiError(
            401,
            "an API key is required (X-API-Key header or Authorization: Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = get_state(request).keys.verify(secret.strip())
    if key is None:
        raise ApiError(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return key


#: Query parameters that may be repeated (lists); any other one given twice is refused.
LIST_PARAMETERS = frozenset({"cart"})


async def single_query_values(request: Request) -> None:
    """422 for a scalar query parameter given more than once (``query=a&query=b``): which one was meant?"""
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1} - LIST_PARAMETERS)
    if repeated:
        raise ApiError(422, f"query parameter(s) given more than once: {', '.join(repeated)}")


def check_rate(state: ServiceState, key: ApiKey) -> None:
    """429 with ``Retry-After`` once the key's token bucket (shared by all workers) is empty."""
    wait = state.limiter.take(key.key_id)
    if wait > 0:
        state.metrics.inc("shoplm_rate_limited_total")
        raise ApiError(
            429,
            f"rate limit of {state.limiter.rate:g} requests/s for this key exceeded; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency admitting keys of ``scope`` or above (403 otherwise), rate-limited per key."""

    async def dependency(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        if not scope_allows(key.scope, scope):
            raise ApiError(403, f"this API key has scope {key.scope!r}; this call needs {scope!r} or above")
        check_rate(get_state(request), key)
        return key

    dependency.__name__ = f"require_{scope}"
    return dependency


async def get_recommender(request: Request) -> ShopRecommender:
    """The live recommender, read once: the request keeps this object even if a reload swaps it."""
    shop = get_state(request).live.current
    if shop is None:
        raise ApiError(
            503,
            "no trained models yet: run `shoplm train`; the service loads them by itself",
            code="models_unavailable",
        )
    return shop


_T = TypeVar("_T")
_PER_APP_LOCK = threading.Lock()


def per_app(request: Request, name: str, make: Callable[[ServiceState], _T]) -> _T:
    """The object kept as ``app.state.<name>``, made by ``make`` on first use (once, under a lock).

    For services a route needs in some processes only, e.g. whose models load on first call.
    """
    app_state = request.app.state
    found = getattr(app_state, name, None)
    if found is None:
        with _PER_APP_LOCK:
            found = getattr(app_state, name, None)
            if found is None:
                found = make(get_state(request))
                setattr(app_state, name, found)
    return found  # type: ignore[no-any-return]


def get_running_experiments(request: Request) -> RunningExperiments:
    """The process's cache of running A/B experiments (the recommendation route asks it per request)."""
    return per_app(
        request,
        "shoplm_experiments",
        lambda state: RunningExperiments(state.store, ttl=state.settings.experiments.cache_seconds),
    )


def get_insights(request: Request) -> Insights:
    """The analytics results of this shop (read from the store; no models needed)."""
    state = get_state(request)
    return Insights(state.store, state.pseudonymizer)
