"""Alerts of every kind: stored once, then delivered to the configured webhook, signed, with retries.

A job that finds something (a fraudulent-looking order, a spike of negative reviews) calls
:meth:`AlertCenter.raise_alerts`: new alerts are stored first (an alert found again is not
stored twice, since its id says what it is about), then every undelivered alert is POSTed to
``alerts.webhook_url``. Delivery state lives in the store, so an alert whose delivery failed,
or that was stored just before a crash, goes out on the next call.

The signature: ``X-Shoplm-Signature: sha256=HEX`` where HEX is HMAC-SHA256 under
``alerts.webhook_secret`` of ``TIMESTAMP + "." + BODY`` and TIMESTAMP is the
``X-Shoplm-Timestamp`` header (Unix seconds). A receiver checks it with :func:`verify_signature`.

Example:
    >>> sign(b"secret", 1700000000, b'{"alert_id": "fraud:O1"}')[:15]
    'sha256=19a8b8cd'
    >>> verify_signature(b"secret", "1700000000", b'{"alert_id": "fraud:O1"}',
    ...                  sign(b"secret", 1700000000, b'{"alert_id": "fraud:O1"}'), now=1700000010)
    True
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from shoplm.config import AlertSettings
from shoplm.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Shoplm-Signature"
TIMESTAMP_HEADER = "X-Shoplm-Timestamp"
#: Answers worth trying again: the receiver was busy or briefly down.
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance: int = 300
) -> bool:
    """True if ``signature`` is ours for ``body`` at ``timestamp``, and the timestamp is recent.

    Args:
        tolerance: seconds a timestamp may be old (or ahead): older requests are replays.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


@dataclass
class DeliveryReport:
    """What one delivery round did."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # alert id -> last error


class AlertCenter:
    """Stores alerts once and delivers them to the webhook.

    Args:
        store: the shop's store.
        settings: ``Settings.alerts``.
        client: an HTTP client (tests pass their own); one is made when needed.
        sleep: how to wait between attempts (tests pass a no-op).
    """

    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self._client = client
        self._sleep = sleep

    def raise_alerts(self, alerts: Sequence[dict[str, Any]]) -> tuple[list[str], DeliveryReport]:
        """Store the new ones among ``alerts``, then deliver everything undelivered.

        Returns:
            The ids stored now, and the delivery report (empty without a webhook).
        """
        new_ids = self.store.alerts.add(alerts)
        return new_ids, self.deliver_pending()

    def deliver_pending(self, *, limit: int = 500) -> DeliveryReport:
        """POST each undelivered alert with attempts left; retries with doubling waits."""
        report = DeliveryReport()
        if not self.settings.webhook_url:
            return report
        pending = self.store.alerts.pending(max_attempts=self.settings.max_attempts, limit=limit)
        client = self._client or httpx.Client(timeout=self.settings.timeout_seconds)
        try:
            for alert in pending:
                error = self._deliver(client, alert)
                if error is None:
                    report.delivered.append(alert["alert_id"])
                else:
                    report.failed[alert["alert_id"]] = error
        finally:
            if self._client is None:
                client.close()
        if report.failed:
            log.warning("alerts not delivered (will retry): %s", report.failed)
        return report

    def _deliver(self, client: httpx.Client, alert: dict[str, Any]) -> str | None:
        """Try one alert until it is acknowledged or its attempts run out; None when delivered."""
        secret = self.settings.webhook_secret.get_secret_value().encode()
        payload = {k: alert[k] for k in ("alert_id", "kind", "subject", "score", "title", "body", "created_ms")}
        body = orjson.dumps(payload)
        wait = self.settings.backoff_seconds
        error = ""
        for attempt in range(alert["attempts"], self.settings.max_attempts):
            if attempt > alert["attempts"]:
                self._sleep(wait)
                wait *= 2
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                "Idempotency-Key": alert["alert_id"],  # a receiver can drop a repeat after a lost answer
            }
            try:
                response = client.post(self.settings.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.store.alerts.mark_failed(alert["alert_id"], error)
                continue
            if 200 <= response.status_code < 300:
                self.store.alerts.mark_delivered(alert["alert_id"])
                return None
            error = f"HTTP {response.status_code}"
            self.store.alerts.mark_failed(alert["alert_id"], error)
            if response.status_code not in _RETRYABLE:
                break  # the receiver refuses it: trying again now gives the same answer
        return error or "no attempts left"
