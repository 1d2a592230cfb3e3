"""Outbound webhook HTTP: signed POSTs over kept-alive connections to checked addresses."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from loyalty.domain.webhooks.targets import Target

CONNECT_TIMEOUT = 3.0
TIMEOUT = 5.0  # the whole request, connection included
MAX_IDLE = 300  # kept-alive connections per target (as many as deliveries in flight)

MAX_LINE = 8192  # a status or header line longer than this is a bad response
MAX_HEADERS = 100
MAX_KEPT_BODY = 65536  # a longer answer is not read: the connection is closed instead


@dataclass
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class BadResponse(Exception):
    """The endpoint's answer is not an HTTP/1.x response we can read."""


@dataclass
class _Connection:
    sock: socket.socket
    rfile: BinaryIO


class Sender:
    """Signed POSTs over kept-alive connections to the checked address of each target.

    A stream batch sends hundreds of requests at once under one interpreter lock, so the
    request path is kept short: the request is written with one `sendall` (every header
    is ours: ids, timestamps, signature, and the host of a checked URL), and of the
    answer only the status, `content-length` and `connection` are read. An answer that
    would need more (no length, chunked, a large body, `connection: close`, HTTP/1.0) is
    not read further and its connection is closed. No redirect is followed; no retry is
    made here (a failure goes to the retry queue).
    """

    def __init__(
        self,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.max_idle = max_idle
        self._idle: dict[tuple[str, str, int, str], list[_Connection]] = {}
        self._lock = threading.Lock()

    def _connect(self, target: Target, timeout: float) -> _Connection:
        # Connect to the address that passed the check, not to a fresh DNS answer.
        sock = socket.create_connection((target.addresses[0], target.port), timeout=timeout)
        if target.scheme == "https":
            try:
                # Certificate and host name are checked against the URL's host (SNI too).
                sock = self.ssl_context.wrap_socket(sock, server_hostname=target.host)
            except BaseException:
                sock.close()
                raise
        return _Connection(sock, sock.makefile("rb"))

    def _checkout(self, key: tuple[str, str, int, str]) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                conn = idle.pop()
                if not _readable(conn.sock):
                    return conn
                _close(conn)
        return None

    def _checkin(self, key: tuple[str, str, int, str], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        _close(conn)

    def post(self, target: Target, headers: Mapping[str, str], body: str) -> SendResult:
        started = time.perf_counter()
        default_port = 443 if target.scheme == "https" else 80
        host_name = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
        host = host_name if target.port == default_port else f"{host_name}:{target.port}"
        data = body.encode()
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {target.path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: loyalty-webhooks/1\r\n"
            f"content-length: {len(data)}\r\n{lines}\r\n"
        ).encode() + data
        key = (target.scheme, target.host, target.port, target.addresses[0])
        deadline = started + self.timeout
        conn: _Connection | None = None
        keep = False
        try:
            conn = self._checkout(key) or self._connect(target, min(self.connect_timeout, self.timeout))
            conn.sock.settimeout(_remaining(deadline))
            conn.sock.sendall(request)
            status, keep = _read_response(conn, deadline)
        except TimeoutError:
            return SendResult(None, _ms(started), "timeout")
        except (OSError, BadResponse) as exc:  # refused, reset, TLS failure, garbage
            return SendResult(None, _ms(started), f"connection error: {type(exc).__name__}")
        finally:
            if conn is not None:
                if keep:
                    self._checkin(key, conn)
                else:
                    _close(conn)
        latency = _ms(started)
        if 200 <= status < 300:
            return SendResult(status, latency, None)
        return SendResult(status, latency, f"HTTP {status}")


def _close(conn: _Connection) -> None:
    try:
        conn.rfile.close()
    finally:
        conn.sock.close()


def _readable(sock: socket.socket) -> bool:
    """Readable while idle: the endpoint closed the connection (or sent something unasked)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _remaining(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError
    return left


def _line(conn: _Connection, deadline: float) -> bytes:
    # The deadline holds for the whole answer: an endpoint trickling bytes cannot hold a batch.
    conn.sock.settimeout(_remaining(deadline))
    line = conn.rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadResponse("line too long")
    return line


def _read_response(conn: _Connection, deadline: float) -> tuple[int, bool]:
    """(status, whether the connection can carry another request)."""
    while True:
        status_line = _line(conn, deadline)
        if not status_line:
            raise BadResponse("connection closed before an answer")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse("not an HTTP/1.x status line")
        status = int(parts[1])
        keep = parts[0] == b"HTTP/1.1"
        length: int | None = None
        for _ in range(MAX_HEADERS):
            line = _line(conn, deadline)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise BadResponse("bad content-length") from None
            elif name == b"connection" and b"close" in value.lower():
                keep = False
            elif name == b"transfer-encoding":
                keep = False  # a body we do not read
        else:
            raise BadResponse("too many headers")
        if 100 <= status < 200:
            continue  # an interim answer (100 Continue): the final one follows
        if status in (204, 304):
            length = 0
        if length is None or length < 0 or length > MAX_KEPT_BODY:
            return status, False
        if length:
            conn.sock.settimeout(_remaining(deadline))
            if len(conn.rfile.read(length)) != length:
                return status, False
        return status, keep


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


_sender: Sender | None = None


def sender() -> Sender:  # one per instance: its kept-alive connections serve every batch
    global _sender
    if _sender is None:
        _sender = Sender()
    return _sender
