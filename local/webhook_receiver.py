"""A real HTTP webhook receiver on 127.0.0.1 for tests, benchmarks and trying the local stack.

It verifies every delivery with the `standardwebhooks` package when given the secret,
answers with scripted status codes (to simulate failures) after an optional delay,
and keeps what it received.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    status: int  # what the receiver answered
    verified: bool | None  # None: no secret to verify with
    peer: tuple[str, int] = ("", 0)  # client address: one per connection (shows reuse)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    server: ThreadingHTTPServer | None = None
    secret: str | None = None
    statuses: list[int] = field(default_factory=list)  # answered in order, then `default_status`
    default_status: int = 200
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    scheme: str = "http"

    @property
    def url(self) -> str:
        assert self.server is not None, "the receiver is not running"
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}/hook"

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else self.default_status

    def verify(self, body: str, headers: dict[str, str]) -> bool | None:
        if not self.secret:
            return None
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many parallel deliveries connect at once


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses connections

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            status = receiver.next_status()
            verified = receiver.verify(body, headers)
            with receiver.lock:
                peer = (str(self.client_address[0]), int(self.client_address[1]))
                receiver.received.append(Received(self.path, headers, body, status, verified, peer))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            return

    return Handler


@contextmanager
def running_receiver(
    secret: str | None = None,
    statuses: list[int] | None = None,
    delay_seconds: float = 0.0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1; with `tls` (a server-side context) it answers https."""
    receiver = Receiver(secret=secret, statuses=list(statuses or []), delay_seconds=delay_seconds)
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        receiver.scheme = "https"
    receiver.server = server
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
