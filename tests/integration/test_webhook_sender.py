"""The webhook HTTP sender against a real receiver on 127.0.0.1: connection reuse, timeouts,
redirects and non-2xx answers (sockets, no AWS)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from local.webhook_receiver import running_receiver
from loyalty.adapters.webhook_http import Sender
from loyalty.domain.webhooks.signing import headers, new_secret
from loyalty.domain.webhooks.targets import Target, check_target


def test_sequential_deliveries_reuse_one_connection_and_verify() -> None:
    # Given a receiver and a sender
    secret = new_secret()
    with running_receiver(secret=secret) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender()
        # When five deliveries are sent one after another
        outcomes = [
            sender.post(target, headers(secret, f"evt_{i}", 1_790_000_000, "{}"), "{}") for i in range(5)
        ]
        # Then all succeed over a single kept-alive connection
        assert all(o.ok and o.status_code == 200 for o in outcomes)
        assert len({r.peer for r in receiver.received}) == 1
        assert [r.webhook_id for r in receiver.received] == [f"evt_{i}" for i in range(5)]


def test_slow_endpoint_times_out_and_errors_are_reported_not_raised() -> None:
    # Given an endpoint slower than the sender's timeout
    with running_receiver(delay_seconds=0.5) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender(connect_timeout=0.2, timeout=0.2)
        # When a delivery is sent / Then it is a timeout failure
        outcome = sender.post(target, {"webhook-id": "evt_t"}, "{}")
        assert not outcome.ok and outcome.error == "timeout" and outcome.status_code is None


def test_redirects_are_not_followed_and_non_2xx_fails() -> None:
    # Given an endpoint answering a redirect, then a server error
    with running_receiver(statuses=[302, 500]) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender()
        # When two deliveries are sent / Then both fail with their status, and one request each
        first = sender.post(target, {"webhook-id": "evt_r"}, "{}")
        second = sender.post(target, {"webhook-id": "evt_s"}, "{}")
        assert (first.ok, first.error) == (False, "HTTP 302")
        assert (second.ok, second.error) == (False, "HTTP 500")
        assert len(receiver.received) == 2


def test_closed_port_is_a_connection_error() -> None:
    # Given a port nothing listens on (a receiver that has stopped)
    with running_receiver() as receiver:
        url = receiver.url
    target = check_target(url, local_stack=True)
    # When a delivery is sent / Then a connection error is reported
    outcome = Sender().post(target, {"webhook-id": "evt_c"}, "{}")
    assert not outcome.ok and outcome.error is not None and outcome.error.startswith("connection error")


# --- TLS and odd answers ----------------------------------------------------------------


def _certificate(tmp_path: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` (its own CA), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(("url_host", "ok"), [("hooks.example.test", True), ("other.example.test", False)])
def test_https_checks_the_certificate_against_the_urls_host_at_the_checked_address(
    tmp_path: Path, url_host: str, ok: bool
) -> None:
    # Given an https endpoint on 127.0.0.1 whose certificate names hooks.example.test
    cert, key = _certificate(tmp_path, "hooks.example.test")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    server_side.sni_callback = lambda _sock, name, _context: server_names.append(name)
    with running_receiver(tls=server_side) as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        # And a target whose URL names `url_host`, checked to resolve to that address
        target = Target("https", url_host, port, "/hook", ("127.0.0.1",))
        sender = Sender(ssl_context=ssl.create_default_context(cafile=str(cert)))
        # When a delivery is sent twice
        outcomes = [sender.post(target, {"webhook-id": f"evt_{i}"}, "{}") for i in range(2)]
    # Then TLS named the URL's host (SNI), not the address connected to, and the delivery
    # arrives (over one connection) only when the certificate matches that host
    assert server_names and set(server_names) == {url_host}
    if ok:
        assert all(o.ok for o in outcomes), outcomes
        assert receiver.received[0].headers["host"] == f"hooks.example.test:{port}"
        assert len({r.peer for r in receiver.received}) == 1
    else:
        assert all(o.error == "connection error: SSLCertVerificationError" for o in outcomes), outcomes
        assert receiver.received == []


@dataclass
class _Endpoint:
    target: Target
    connections: int = 0  # accepted so far: one per connection the sender opened
    requests: int = 0  # requests read so far
    stop: Callable[[], None] = lambda: None


def _scripted_endpoint(
    answers: list[bytes],
    close_after_first: bool = False,
    pause: float = 0.05,
    address: str = "127.0.0.1",
    port: int = 0,
) -> _Endpoint:
    """An endpoint that answers each request on a connection with the next scripted bytes.

    `|` in an answer is a pause of `pause` seconds between its pieces. An empty answer
    closes the connection; with `close_after_first` the first answer's connection is
    closed right after it, without a word (an idle timeout on their side).
    """
    listener = socket.create_server((address, port))
    endpoint = _Endpoint(Target("http", address, listener.getsockname()[1], "/hook", (address,)))
    script = list(answers)
    stopped = threading.Event()
    open_connections: list[socket.socket] = []

    def answer(conn: socket.socket, rfile: BinaryIO) -> None:
        while script:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                chunk = rfile.readline()
                if not chunk:
                    return
                head += chunk
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length")
            )
            rfile.read(length)
            endpoint.requests += 1
            scripted = script.pop(0)
            if not scripted:
                return
            for piece in scripted.split(b"|"):
                conn.sendall(piece)
                if b"|" in scripted and stopped.wait(pause):
                    return
            if close_after_first and len(script) == len(answers) - 1:
                return  # the endpoint drops the connection after its first answer

    def serve() -> None:
        while script:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            endpoint.connections += 1
            open_connections.append(conn)
            # OSError: the sender gave up and closed
            with conn, conn.makefile("rb") as rfile, contextlib.suppress(OSError):
                answer(conn, rfile)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        # Shut down, not only closed: that is what wakes a thread blocked in accept or recv.
        for sock in [listener, *open_connections]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=3)

    endpoint.stop = stop
    return endpoint


OK_EMPTY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
LONG_LINE = b"x-long: " + b"a" * 70_000 + b"\r\n"  # over http.client's 64 KB line limit


@pytest.mark.parametrize(
    ("first", "status", "error", "reused"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, None, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nthanks", 200, None, True),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", 202, None, True),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, None, False),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", 200, None, False),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", 200, None, False),
        (b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n", 503, "HTTP 503", True),
        # A body up to 64 KB is read and the connection kept; a longer one is not read.
        (b"HTTP/1.1 200 OK\r\ncontent-length: 65536\r\n\r\n" + b"a" * 65536, 200, None, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 65537\r\n\r\n" + b"a" * 65537, 200, None, False),
        (b"SSH-2.0-OpenSSH\r\n\r\n", None, "connection error: BadResponse", False),
        (b"HTTP/1.1 200 OK\r\n" + LONG_LINE + b"\r\n", None, "connection error: BadResponse", False),
        (
            b"HTTP/1.1 200 OK\r\n" + b"x-many: 1\r\n" * 101 + b"\r\n",
            None,
            "connection error: BadResponse",
            False,
        ),
        (b"", None, "connection error: BadResponse", False),  # closed without answering
    ],
)
def test_answers_are_read_only_as_far_as_needed_and_connections_kept_only_when_safe(
    first: bytes, status: int | None, error: str | None, reused: bool
) -> None:
    # Given an endpoint that gives `first` as its first answer, then a plain 200
    endpoint = _scripted_endpoint([first, OK_EMPTY])
    sender = Sender()
    try:
        # When two deliveries are sent one after the other
        outcome = sender.post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        second = sender.post(endpoint.target, {"webhook-id": "evt_2"}, "{}")
    finally:
        endpoint.stop()
    # Then the first is judged by its status, and the second succeeds on the same
    # connection only when the first answer left it in a known state
    assert (outcome.status_code, outcome.error) == (status, error)
    assert second.ok, second
    assert endpoint.connections == (1 if reused else 2)


def test_an_endpoint_trickling_its_answer_is_cut_at_the_deadline() -> None:
    # Given an endpoint that sends its headers a piece at a time, slower than the deadline
    pieces = b"|".join([b"HTTP/1.1 200 OK\r\n"] + [b"x-slow: 1\r\n"] * 10 + [b"\r\n"])
    endpoint = _scripted_endpoint([pieces])
    try:
        # When a delivery is sent with a 0.2 s deadline
        started = time.perf_counter()
        outcome = Sender(timeout=0.2).post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        elapsed = time.perf_counter() - started
    finally:
        endpoint.stop()
    # Then it is a timeout, reported about when the deadline passed (not per piece)
    assert outcome.error == "timeout"
    assert elapsed < 0.45


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nx-slow: " + b"|".join(b"abcdef"[i : i + 1] for i in range(6)) + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n" + b"|".join(b"abcdef"[i : i + 1] for i in range(6)),
    ],
    ids=["headers", "body"],
)
def test_an_endpoint_trickling_one_byte_per_second_is_cut_at_the_deadline(answer: bytes) -> None:
    # Given an endpoint that sends part of its answer one byte per second, each byte well
    # within a socket read timeout (which alone would wait for ever)
    endpoint = _scripted_endpoint([answer], pause=1.0)
    try:
        # When a delivery is sent with a 1.5 s deadline
        started = time.perf_counter()
        outcome = Sender(timeout=1.5).post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        elapsed = time.perf_counter() - started
    finally:
        endpoint.stop()
    # Then it is a timeout at the deadline, not after the last byte (about 6 s)
    assert (outcome.status_code, outcome.error) == (None, "timeout")
    assert 1.4 < elapsed < 2.5


def test_an_answer_without_length_is_judged_by_its_status_and_not_read() -> None:
    # Given an endpoint that answers 200 with a body that has no length and keeps coming
    endless = b"HTTP/1.1 200 OK\r\n\r\n" + b"|".join([b"x" * 4096] * 40)
    endpoint = _scripted_endpoint([endless, OK_EMPTY])
    sender = Sender(timeout=1.0)
    try:
        # When a delivery is sent, then another
        started = time.perf_counter()
        outcome = sender.post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        elapsed = time.perf_counter() - started
        second = sender.post(endpoint.target, {"webhook-id": "evt_2"}, "{}")
    finally:
        endpoint.stop()
    # Then the first succeeds at once (its body is not waited for) and its connection is
    # not kept: the second goes over a new one
    assert outcome.ok and outcome.status_code == 200 and elapsed < 0.8, (outcome, elapsed)
    assert second.ok and endpoint.connections == 2


def test_a_redirect_is_a_failure_and_not_followed() -> None:
    # Given an endpoint that redirects to a path of its own
    endpoint = _scripted_endpoint(
        [b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n", OK_EMPTY]
    )
    try:
        # When a delivery is sent
        outcome = Sender().post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        time.sleep(0.1)
    finally:
        endpoint.stop()
    # Then it fails with the redirect's status, after one request
    assert (outcome.status_code, outcome.error) == (307, "HTTP 307")
    assert endpoint.requests == 1


def test_a_failed_request_is_not_retried_by_the_sender() -> None:
    # Given an endpoint that closes its first connection without answering
    endpoint = _scripted_endpoint([b"", OK_EMPTY])
    try:
        # When a delivery is sent
        outcome = Sender().post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        time.sleep(0.1)
    finally:
        endpoint.stop()
    # Then it fails (the retry queue takes it from here) after one request on one connection
    assert outcome.error == "connection error: BadResponse"
    assert (endpoint.connections, endpoint.requests) == (1, 1)


def test_a_kept_connection_the_endpoint_dropped_is_not_reused() -> None:
    # Given an endpoint that closes each connection right after its first answer
    endpoint = _scripted_endpoint([OK_EMPTY, OK_EMPTY], close_after_first=True)
    sender = Sender()
    try:
        # When two deliveries are sent, the second after the endpoint dropped the first's connection
        first = sender.post(endpoint.target, {"webhook-id": "evt_1"}, "{}")
        time.sleep(0.1)
        second = sender.post(endpoint.target, {"webhook-id": "evt_2"}, "{}")
    finally:
        endpoint.stop()
    # Then both arrive: the dropped connection was noticed and a new one made
    assert first.ok and second.ok, (first, second)
    assert endpoint.connections == 2


def test_the_checked_address_is_used_and_each_address_has_its_own_connections() -> None:
    # Given one port on two loopback addresses, and a host name that does not resolve at all
    first = _scripted_endpoint([OK_EMPTY, OK_EMPTY])
    port = first.target.port
    try:
        second = _scripted_endpoint([OK_EMPTY], address="127.0.0.2", port=port)
    except OSError:
        first.stop()
        pytest.skip("127.0.0.2 is not a loopback address here")
    sender = Sender()
    try:
        # When the name was checked to one address, then (a new DNS answer) to the other
        outcomes = [
            sender.post(Target("http", "hooks.example.test", port, "/hook", (address,)), {}, "{}")
            for address in ("127.0.0.1", "127.0.0.1", "127.0.0.2")
        ]
    finally:
        first.stop()
        second.stop()
    # Then each delivery went to the address it was checked to, without a DNS lookup, and
    # the connection kept for the first address was not used for the second
    assert all(o.ok for o in outcomes), outcomes
    assert (first.connections, first.requests) == (1, 2)
    assert (second.connections, second.requests) == (1, 1)
