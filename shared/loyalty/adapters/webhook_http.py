"""Webhook HTTP: signed POSTs to the address that passed the SSRF check, sent with urllib3.

One connection pool per (scheme, host, port, checked address) keeps connections alive
across deliveries and batches. A pool connects to the checked address itself, so a DNS
answer that changes after the check cannot redirect a delivery, while TLS names the
URL's host (SNI) and checks the certificate against it. One deadline holds for the whole
exchange; no redirect is followed and no retry is made here (a failure goes to the retry
queue). Of an answer only the status is used: a short body is read so the connection
can carry the next delivery, anything longer or without a length closes it instead.
"""

from __future__ import annotations

import http.client
import io
import math
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from socket import socket
from typing import TYPE_CHECKING, Any, cast

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as RequestTimeout
from urllib3.util import SKIP_HEADER
from urllib3.util.retry import Retry

from loyalty.domain.webhooks.targets import Target

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CONNECT_TIMEOUT = 3.0
TIMEOUT = 5.0  # the whole request: connection, request and answer
MAX_KEPT_BODY = 65536  # a longer answer is not read: its connection is closed instead
MAX_IDLE = 300  # kept-alive connections per pool, one per delivery in flight
USER_AGENT = "loyalty-webhooks/1"
# Built once: urllib3 would otherwise build a Retry from `retries=False` on every request.
NO_RETRIES = Retry(total=False, redirect=False)
# What the delivery log has always called an answer that is not HTTP/1.x we can read.
BAD_RESPONSE = "BadResponse"


@dataclass
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Route:
    """Where a target's deliveries go: its pool, and the headers every request to it carries."""

    pool: HTTPConnectionPool
    headers: dict[str, str]


class Sender:
    """Signed POSTs over kept-alive connections to the checked address of each target."""

    def __init__(
        self,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self.timeout = Timeout(connect=min(connect_timeout, timeout), total=timeout)
        # One context for all connections: without it urllib3 builds one, and loads the
        # CA bundle, for each new connection. It checks host names itself (OpenSSL).
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.max_idle = max_idle
        self._routes: dict[tuple[str, str, int, str], _Route] = {}
        self._lock = threading.Lock()

    def _route(self, target: Target) -> _Route:
        key = (target.scheme, target.host, target.port, target.addresses[0])
        route = self._routes.get(key)  # no lock on the common path: a dict read is atomic
        if route is None:
            with self._lock:
                route = self._routes.get(key)
                if route is None:
                    route = self._routes[key] = _Route(self._new_pool(target), _fixed_headers(target))
        return route

    def _new_pool(self, target: Target) -> HTTPConnectionPool:
        # Connect to the address that passed the check, not to a fresh DNS answer.
        address = target.addresses[0]
        options: dict[str, Any] = {
            "port": target.port,
            "timeout": self.timeout,
            "maxsize": self.max_idle,
            "block": False,  # more deliveries in flight than idle connections: open another
            "retries": NO_RETRIES,
        }
        if target.scheme == "https":
            # SNI and the certificate check use the URL's host. No `assert_hostname`: it
            # would turn off the context's own (OpenSSL) host check for urllib3's.
            return _TLSPool(address, server_hostname=target.host, ssl_context=self.ssl_context, **options)
        return _Pool(address, **options)

    def post(self, target: Target, headers: Mapping[str, str], body: str) -> SendResult:
        started = time.perf_counter()
        route = self._route(target)
        try:
            answer = route.pool.urlopen(
                "POST",
                target.path,
                body=body.encode(),
                headers={**headers, **route.headers},
                retries=NO_RETRIES,
                redirect=False,  # a redirect could lead anywhere: it is a failure
                assert_same_host=False,
                preload_content=False,  # the body is read below, and only when short
                decode_content=False,
                release_conn=False,
            )
            _finish(answer)
        except NewConnectionError as exc:  # first: urllib3 makes it a kind of ConnectTimeoutError
            return SendResult(None, _ms(started), f"connection error: {_cause(exc)}")
        except RequestTimeout:
            return SendResult(None, _ms(started), "timeout")
        except (HTTPError, OSError, http.client.HTTPException) as exc:  # refused, reset, TLS, garbage
            return SendResult(None, _ms(started), f"connection error: {_cause(exc)}")
        latency = _ms(started)
        if 200 <= answer.status < 300:
            return SendResult(answer.status, latency, None)
        return SendResult(answer.status, latency, f"HTTP {answer.status}")


def _finish(answer: BaseHTTPResponse) -> None:
    """Read a short answer so its connection serves the next delivery; close any other."""
    length = answer.length_remaining
    if length is not None and length <= MAX_KEPT_BODY:
        answer.read()  # exactly `length` bytes; urllib3 then puts the connection back
    else:
        answer.close()  # chunked, read-to-the-end or too long: not worth reading
    answer.release_conn()  # a closed connection goes back too: the pool opens a new one


def _fixed_headers(target: Target) -> dict[str, str]:
    default_port = 443 if target.scheme == "https" else 80
    name = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
    return {
        "host": name if target.port == default_port else f"{name}:{target.port}",  # not the address
        "user-agent": USER_AGENT,
        # The body is never looked at, so its coding does not matter: one header less to emit.
        "accept-encoding": SKIP_HEADER,
    }


def _cause(exc: BaseException) -> str:
    """The name of the error urllib3 wrapped (ConnectionRefusedError, SSLCertVerificationError)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return BAD_RESPONSE if isinstance(exc, http.client.HTTPException) else type(exc).__name__


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


# --- one deadline for the whole answer ------------------------------------------------
# urllib3's Timeout(total=...) bounds each socket read by what remains of the total, but
# not their sum: an endpoint trickling a byte at a time would hold a delivery (and its
# batch) for ever. So every read of an answer, headers and body, ends at one deadline.


class _DeadlineReader(io.RawIOBase):
    """The socket reader under an answer; each read waits only until the deadline."""

    def __init__(self, sock: socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # counted as a user of the socket
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline for the answer passed")  # urllib3: ReadTimeoutError
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client's response sees of the socket: only `makefile`, with a deadline."""

    def __init__(self, sock: socket) -> None:
        self._sock = sock

    def makefile(self, mode: str) -> io.BufferedReader:
        # urllib3 has just set the socket's timeout to what remains of the total.
        left = self._sock.gettimeout()
        deadline = math.inf if left is None else time.monotonic() + left
        return io.BufferedReader(_DeadlineReader(self._sock, deadline))


class _Answer(http.client.HTTPResponse):
    """http.client's response (which urllib3 wraps), reading through a _DeadlineReader."""

    def __init__(self, sock: socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(cast(socket, _DeadlineSocket(sock)), *args, **kwargs)


class _Connection(HTTPConnection):
    response_class = _Answer


class _TLSConnection(HTTPSConnection):
    response_class = _Answer


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_sender: Sender | None = None


def sender() -> Sender:  # one per instance: its kept-alive connections serve every batch
    global _sender
    if _sender is None:
        _sender = Sender(max_idle=MAX_IDLE)
    return _sender
