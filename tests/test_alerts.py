"""Alerts: stored once, delivered to a real local webhook with a valid signature, retried after failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from shoplm.app.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertCenter, verify_signature
from shoplm.config import AlertSettings
from shoplm.store import Store

SECRET = "webhook-secret"


class Receiver:
    """A webhook on loopback that fails the first ``fail_first`` requests with 503."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first = fail_first
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(receiver.status if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail_first=2)
    yield found
    found.server.shutdown()


def _alert(order: str, score: float = 0.9) -> dict[str, object]:
    return {
        "alert_id": f"fraud:{order}",
        "kind": "fraud",
        "subject": order,
        "score": score,
        "title": f"order {order} looks fraudulent",
        "body": {"rules": [{"name": "new_account", "text": "first order 2 h after sign-up"}]},
    }


def _center(store: Store, url: str, **overrides: object) -> AlertCenter:
    settings = AlertSettings(webhook_url=url, webhook_secret=SecretStr(SECRET), backoff_seconds=0.0, **overrides)
    return AlertCenter(store, settings, sleep=lambda _s: None)


def test_an_alert_is_stored_once_and_delivered_signed_after_retries(store: Store, receiver: Receiver) -> None:
    center = _center(store, receiver.url)
    new, report = center.raise_alerts([_alert("O1")])
    assert new == ["fraud:O1"] and report.delivered == ["fraud:O1"]
    assert len(receiver.received) == 3  # two 503s, then acknowledged
    headers, body = receiver.received[-1]
    assert verify_signature(SECRET.encode(), headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify_signature(b"other", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET.encode(), headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER])
    again, report = center.raise_alerts([_alert("O1", score=0.95)])  # the job finds it again
    assert again == [] and report.delivered == []
    assert store.alerts.count("fraud") == 1 and len(receiver.received) == 3
    stored = store.alerts.recent("fraud")[0]
    assert stored["attempts"] == 3 and stored["delivered_ms"] is not None


def test_an_unreachable_webhook_keeps_alerts_for_the_next_round(store: Store) -> None:
    down = Receiver()
    url = down.url
    down.server.shutdown()
    down.server.server_close()  # nothing listens on the port now
    center = _center(store, url, max_attempts=2, timeout_seconds=1.0)
    _new, report = center.raise_alerts([_alert("O2")])
    assert report.failed and not report.delivered
    assert store.alerts.pending(max_attempts=5)[0]["attempts"] == 2  # counted, kept
    back = Receiver()
    try:
        report = _center(store, back.url, max_attempts=3).deliver_pending()
        assert report.delivered == ["fraud:O2"]  # the one attempt left succeeded
    finally:
        back.server.shutdown()


def test_a_refusal_is_not_retried_at_once(store: Store) -> None:
    refusing = Receiver(fail_first=10, status=400)
    try:
        _new, report = _center(store, refusing.url).raise_alerts([_alert("O3")])
        assert report.failed == {"fraud:O3": "HTTP 400"} and len(refusing.received) == 1
    finally:
        refusing.server.shutdown()


def test_without_a_webhook_alerts_are_only_stored(store: Store) -> None:
    new, report = AlertCenter(store, AlertSettings()).raise_alerts([_alert("O4")])
    assert new == ["fraud:O4"] and report.delivered == [] and report.failed == {}
