"""Request guards of the service: per-key rate limits and dashboard sessions.

API keys themselves (hashing, scopes, verification) are :mod:`shoplm.app.keys`; the CLI
creates and revokes them through the same class.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from shoplm.app.keys import ApiKey, KeyStore, scope_allows

__all__ = ["ApiKey", "KeyStore", "RateLimiter", "Session", "SessionStore", "scope_allows"]


class RateLimiter:
    """A token bucket per API key: ``rate`` requests a second on average, ``burst`` at once.

    Example:
        >>> limiter = RateLimiter(rate=1, burst=2)
        >>> [limiter.take("k") == 0 for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 if allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


@dataclass
class Session:
    key: ApiKey
    expires: float


class SessionStore:
    """Dashboard logins: a random server-side token in the cookie, never the API key itself.

    Example:
        >>> sessions = SessionStore(hours=1)
        >>> token = sessions.create(ApiKey("k1", "read", "", 0))
        >>> sessions.get(token).key_id, sessions.get("forged")
        ('k1', None)
    """

    def __init__(self, hours: float, *, max_sessions: int = 10_000) -> None:
        self.seconds = hours * 3600.0
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, key: ApiKey) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._sessions = {t: s for t, s in self._sessions.items() if s.expires > now}
                if len(self._sessions) >= self.max_sessions:  # still full: drop the oldest
                    oldest = min(self._sessions, key=lambda t: self._sessions[t].expires)
                    del self._sessions[oldest]
            self._sessions[token] = Session(key, now + self.seconds)
        return token

    def get(self, token: str | None) -> ApiKey | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires < time.monotonic():
            self.delete(token)
            return None
        return session.key

    def delete(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)
