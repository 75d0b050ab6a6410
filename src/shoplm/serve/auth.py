"""Request guards of the service, gathered for the routers: API keys and scopes, dashboard logins, rate limits.

API keys and dashboard sessions are store-bound (:mod:`shoplm.app.keys`); per-key rate limits
are shared by the worker processes (:mod:`shoplm.serve.ratelimit`).
"""

from __future__ import annotations

from shoplm.app.keys import ApiKey, KeyStore, SessionStore, scope_allows
from shoplm.serve.ratelimit import RateLimiter

__all__ = ["ApiKey", "KeyStore", "RateLimiter", "SessionStore", "scope_allows"]
