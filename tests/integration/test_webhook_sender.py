"""The webhook HTTP sender against a real receiver on 127.0.0.1: connection reuse, timeouts,
redirects and non-2xx answers (sockets, no AWS)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    with running_receiver(tls=server_side) as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        # And a target whose URL names `url_host`, checked to resolve to that address
        target = Target("https", url_host, port, "/hook", ("127.0.0.1",))
        sender = Sender(ssl_context=ssl.create_default_context(cafile=str(cert)))
        # When a delivery is sent twice
        outcomes = [sender.post(target, {"webhook-id": f"evt_{i}"}, "{}") for i in range(2)]
    # Then it arrives (over one connection) only when the certificate matches the URL's host
    if ok:
        assert all(o.ok for o in outcomes), outcomes
        assert receiver.received[0].headers["host"] == f"hooks.example.test:{port}"
        assert len({r.peer for r in receiver.received}) == 1
    else:
        assert all(o.error == "connection error: SSLCertVerificationError" for o in outcomes), outcomes
        assert receiver.received == []


def _scripted_endpoint(
    answers: list[bytes], close_after_first: bool = False
) -> tuple[Target, list[int], Callable[[], None]]:
    """An endpoint that answers each request on a connection with the next scripted bytes.

    An empty answer closes the connection; with `close_after_first` the first answer's
    connection is closed right after it, without a word (an idle timeout on their side).
    Returns the target, the number of connections accepted so far (a one-item list), and
    a stop function.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]
    script = list(answers)

    def serve() -> None:
        while script:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            with conn, conn.makefile("rb") as rfile:
                while script:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        chunk = rfile.readline()
                        if not chunk:
                            break
                        head += chunk
                    if not head:
                        break
                    length = next(
                        int(line.split(b":")[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length")
                    )
                    rfile.read(length)
                    answer = script.pop(0)
                    if not answer:
                        break
                    try:
                        for piece in answer.split(b"|"):  # `|`: a pause between pieces
                            conn.sendall(piece)
                            time.sleep(0.05 if b"|" in answer else 0)
                    except OSError:  # the sender gave up and closed
                        break
                    if close_after_first and len(script) == len(answers) - 1:
                        break  # the endpoint drops the connection after its first answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]

    def stop() -> None:
        listener.close()
        thread.join(timeout=2)

    return Target("http", "127.0.0.1", port, "/hook", ("127.0.0.1",)), accepted, stop


OK_EMPTY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


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
        (b"SSH-2.0-OpenSSH\r\n\r\n", None, "connection error: BadResponse", False),
        (
            b"HTTP/1.1 200 OK\r\n" + b"x-long: " + b"a" * 9000 + b"\r\n\r\n",
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
    target, accepted, stop = _scripted_endpoint([first, OK_EMPTY])
    sender = Sender()
    try:
        # When two deliveries are sent one after the other
        outcome = sender.post(target, {"webhook-id": "evt_1"}, "{}")
        second = sender.post(target, {"webhook-id": "evt_2"}, "{}")
    finally:
        stop()
    # Then the first is judged by its status, and the second succeeds on the same
    # connection only when the first answer left it in a known state
    assert (outcome.status_code, outcome.error) == (status, error)
    assert second.ok, second
    assert accepted[0] == (1 if reused else 2)


def test_an_endpoint_trickling_its_answer_is_cut_at_the_deadline() -> None:
    # Given an endpoint that sends its headers a piece at a time, slower than the deadline
    pieces = b"|".join([b"HTTP/1.1 200 OK\r\n"] + [b"x-slow: 1\r\n"] * 10 + [b"\r\n"])
    target, _, stop = _scripted_endpoint([pieces])
    try:
        # When a delivery is sent with a 0.2 s deadline
        started = time.perf_counter()
        outcome = Sender(timeout=0.2).post(target, {"webhook-id": "evt_1"}, "{}")
        elapsed = time.perf_counter() - started
    finally:
        stop()
    # Then it is a timeout, reported about when the deadline passed (not per piece)
    assert outcome.error == "timeout"
    assert elapsed < 0.45


def test_a_kept_connection_the_endpoint_dropped_is_not_reused() -> None:
    # Given an endpoint that closes each connection right after its first answer
    target, accepted, stop = _scripted_endpoint([OK_EMPTY, OK_EMPTY], close_after_first=True)
    sender = Sender()
    try:
        # When two deliveries are sent, the second after the endpoint dropped the first's connection
        first = sender.post(target, {"webhook-id": "evt_1"}, "{}")
        time.sleep(0.1)
        second = sender.post(target, {"webhook-id": "evt_2"}, "{}")
    finally:
        stop()
    # Then both arrive: the dropped connection was noticed and a new one made
    assert first.ok and second.ok, (first, second)
    assert accepted[0] == 2
