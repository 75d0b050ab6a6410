"""A local OpenAI-compatible chat server for tests: answers every request with the reply it was given."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatStub:
    """``POST /v1/chat/completions`` on 127.0.0.1: answers ``reply`` (or ``status`` when not 200); records requests."""

    def __init__(self) -> None:
        self.reply = "Thank you!"
        self.status = 200
        self.requests: list[dict] = []
        self.url = ""

    @property
    def system_prompt(self) -> str:
        return self.requests[-1]["messages"][0]["content"]

    @property
    def user_prompt(self) -> str:
        return self.requests[-1]["messages"][1]["content"]


@contextmanager
def chat_stub() -> Iterator[ChatStub]:
    stub = ChatStub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            stub.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": stub.reply}}]}
            payload = json.dumps(body if stub.status == 200 else {"error": "down"}).encode()
            self.send_response(stub.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
