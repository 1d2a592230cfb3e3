"""Webhook delivery: stream batches, the retry queue and replays (DESIGN.md "Webhooks").

A batch's deliveries all run in parallel (a thread pool over kept-alive connections);
each failure is handed to the retry queue with exponential backoff, or to the
dead-letter queue after the last attempt, and every attempt is logged. A stream
record counts as failed only when one of its hand-offs to a queue failed: Lambda then
sends it again (same event ids), while records already handed off are never re-sent.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from loyalty import webhook_signing
from loyalty.config import settings
from loyalty.errors import NotFound, Throttled
from loyalty.observability import logger
from loyalty.repository import webhooks as repo
from loyalty.repository.statuses import get_catalog
from loyalty.webhook_events import WebhookEvent, business_of, derive, wants
from loyalty.webhook_targets import Target, UnsafeTarget, check_target

CONNECT_TIMEOUT = 3.0
TIMEOUT = 5.0  # the whole request, connection included
# Deliveries in flight at once per function instance; I/O bound, so threads are cheap.
MAX_PARALLEL = 300
LOG_BATCH = 25  # BatchWriteItem's limit
LOG_TTL_SECONDS = 30 * 24 * 3600
MAX_QUEUE_DELAY = 900  # SQS's limit; longer waits are re-enqueued with what remains

DELIVERED = "delivered"
RETRYING = "retrying"
DEAD = "dead"


# --- HTTP ----------------------------------------------------------------------------

MAX_LINE = 8192  # a status or header line longer than this is a bad response
MAX_HEADERS = 100
MAX_KEPT_BODY = 65536  # a longer answer is not read: the connection is closed instead


@dataclass
class Outcome:
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
        max_idle: int = MAX_PARALLEL,
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

    def post(self, target: Target, headers: Mapping[str, str], body: str) -> Outcome:
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
            return Outcome(None, _ms(started), "timeout")
        except (OSError, BadResponse) as exc:  # refused, reset, TLS failure, garbage
            return Outcome(None, _ms(started), f"connection error: {type(exc).__name__}")
        finally:
            if conn is not None:
                if keep:
                    self._checkin(key, conn)
                else:
                    _close(conn)
        latency = _ms(started)
        if 200 <= status < 300:
            return Outcome(status, latency, None)
        return Outcome(status, latency, f"HTTP {status}")


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
_executor: ThreadPoolExecutor | None = None


def sender() -> Sender:  # one per instance: its kept-alive connections serve every batch
    global _sender
    if _sender is None:
        _sender = Sender()
    return _sender


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="webhook")
    return _executor


# --- deliveries ----------------------------------------------------------------------


@dataclass
class Delivery:
    """One event to one subscription, at a given attempt number (1 is the first try)."""

    subscription: dict[str, Any]
    event_id: str
    type: str
    body: str
    attempt: int = 1
    replay_of: str | None = None
    source: str = ""  # the stream record or queue message it came from
    outcome: Outcome | None = None
    state: str = ""
    handed_off: bool = True  # False when a failure could not be queued
    target: Target | str | None = None  # the checked target, or why it was refused
    attempt_record: dict[str, Any] = field(default_factory=dict)

    @property
    def business_id(self) -> str:
        return str(self.subscription["business_id"])

    @property
    def webhook_id(self) -> str:
        return str(self.subscription["webhook_id"])


def new_delivery_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S%f") + uuid.uuid4().hex[:12]


def body_of(event: WebhookEvent) -> str:
    return json.dumps(event.payload(), separators=(",", ":"), sort_keys=True)


def backoff_seconds(attempts_made: int) -> int:
    """Exponential: base * 2**attempts (attempts made so far)."""
    return int(settings().webhook_backoff_base_seconds * 2**attempts_made)


def _check_targets(deliveries: list[Delivery]) -> None:
    """SSRF check again at delivery (DNS may have changed), once per URL per batch."""
    checked: dict[str, Target | str] = {}
    for delivery in deliveries:
        url = str(delivery.subscription["url"])
        if url not in checked:
            try:
                checked[url] = check_target(url, local_stack=settings().local_stack)
            except UnsafeTarget as refused:
                checked[url] = f"target refused: {refused.message}"
        delivery.target = checked[url]


def _send_one(delivery: Delivery) -> Outcome:
    target = delivery.target
    if not isinstance(target, Target):
        return Outcome(None, 0, target or "target not checked")
    stamp = int(time.time())
    secret = str(delivery.subscription["secret"])
    headers = webhook_signing.headers(secret, delivery.event_id, stamp, delivery.body)
    return sender().post(target, headers, delivery.body)


def retry_message(delivery: Delivery, due_at: float) -> dict[str, Any]:
    # The body travels with the message, the secret does not (it is read again at retry).
    return {
        "business_id": delivery.business_id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "body": delivery.body,
        "attempt": delivery.attempt,
        "due_at": due_at,
        "replay_of": delivery.replay_of,
    }


def _hand_off(delivery: Delivery, outcome: Outcome) -> None:
    """A failure goes to the retry queue, or to the dead-letter queue after the last attempt."""
    if outcome.ok:
        delivery.state = DELIVERED
        return
    logger.info("webhook delivery failed", extra=_log_fields(delivery))
    try:
        if delivery.attempt >= settings().webhook_max_attempts:
            delivery.state = DEAD
            repo.dead_letter({**retry_message(delivery, 0), "error": outcome.error})
        else:
            delivery.state = RETRYING
            delay = backoff_seconds(delivery.attempt)
            repo.enqueue_retry(retry_message(delivery, time.time() + delay), delay)
    except Exception:
        logger.exception("could not queue a failed webhook delivery", extra=_log_fields(delivery))
        delivery.handed_off = False


def _deliver(delivery: Delivery) -> Delivery:
    """Send, hand a failure to a queue, and build the attempt's log record (runs in a worker)."""
    outcome = delivery.outcome = _send_one(delivery)
    _hand_off(delivery, outcome)
    delivery_id = new_delivery_id()
    delivery.attempt_record = {
        "business_id": delivery.business_id,
        "webhook_id": delivery.webhook_id,
        "delivery_id": delivery_id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "attempt": delivery.attempt,
        "state": delivery.state,
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "sent_at": repo.sent_at_of(delivery_id),
        "replay_of": delivery.replay_of,
        "body": delivery.body,
        "ttl": int(time.time()) + LOG_TTL_SECONDS,
    }
    return delivery


def _log(records: list[dict[str, Any]]) -> None:
    try:
        repo.log_attempts(records)
    except Exception:
        # The log is for people; the deliveries and their retries are already settled.
        logger.exception("could not write the webhook delivery log")


def deliver_all(deliveries: list[Delivery]) -> set[str]:
    """Deliver in parallel; return the sources (records, messages) whose hand-off failed.

    Log writes start, 25 attempts at a time, while slower endpoints are still answering.
    """
    _check_targets(deliveries)
    if len(deliveries) == 1:
        _log([_deliver(deliveries[0]).attempt_record])
    else:
        pool = executor()
        logs: list[Future[None]] = []
        ready: list[dict[str, Any]] = []
        for done in as_completed([pool.submit(_deliver, d) for d in deliveries]):
            ready.append(done.result().attempt_record)
            if len(ready) == LOG_BATCH:
                logs.append(pool.submit(_log, ready))
                ready = []
        if ready:
            logs.append(pool.submit(_log, ready))
        wait(logs)
    return {d.source for d in deliveries if not d.handed_off}


def _log_fields(delivery: Delivery) -> dict[str, Any]:
    outcome = delivery.outcome
    return {
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "attempt": delivery.attempt,
        "status_code": outcome.status_code if outcome else None,
        "error": outcome.error if outcome else None,
    }


# --- use cases -----------------------------------------------------------------------


class _PerBatch:
    """Subscriptions and status catalogs, read at most once per business per batch."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        self.catalogs: dict[str, dict[str, Any]] = {}

    def subscriptions_of(self, business_id: str) -> list[dict[str, Any]]:
        if business_id not in self.subscriptions:
            self.subscriptions[business_id] = repo.all_subscriptions(business_id)
        return self.subscriptions[business_id]

    def definitions_of(self, business_id: str) -> dict[str, Any]:
        if business_id not in self.catalogs:
            self.catalogs[business_id] = get_catalog(business_id)
        return dict(self.catalogs[business_id].get("definitions") or {})


def _needs_catalog(record: Mapping[str, Any]) -> bool:
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    return bool((image.get("statuses") or {}).get("M"))


def dispatch_stream_records(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Deliver the events of a stream batch; return the eventIDs that must be retried."""
    cache = _PerBatch()
    deliveries: list[Delivery] = []
    for record in records:
        business_id = business_of(record)
        if business_id is None:
            continue
        subscriptions = cache.subscriptions_of(business_id)
        if not subscriptions:
            continue  # the common case: no one listens, no catalog read, nothing sent
        definitions = cache.definitions_of(business_id) if _needs_catalog(record) else {}
        for event in derive(record, definitions):
            body = body_of(event)
            for subscription in subscriptions:
                if wants(subscription, event):
                    deliveries.append(
                        Delivery(subscription, event.id, event.type, body, source=str(record["eventID"]))
                    )
    if not deliveries:
        return set()
    return deliver_all(deliveries)


@dataclass
class RetryMessage:
    message_id: str
    body: dict[str, Any]


def process_retries(messages: list[RetryMessage], clock: Callable[[], float] = time.time) -> set[str]:
    """Retry queue messages: send the due ones again; return the message ids to redeliver."""
    failed: set[str] = set()
    subscriptions: dict[tuple[str, str], dict[str, Any] | None] = {}
    deliveries: list[Delivery] = []
    for message in messages:
        body = message.body
        remaining = float(body.get("due_at") or 0) - clock()
        if remaining > 1:
            # Longer than SQS can delay a message: wait again for what remains.
            try:
                repo.enqueue_retry(body, int(remaining))
            except Exception:
                logger.exception("could not re-enqueue a webhook retry")
                failed.add(message.message_id)
            continue
        key = (str(body["business_id"]), str(body["webhook_id"]))
        if key not in subscriptions:
            subscriptions[key] = repo.get_subscription(*key)
        subscription = subscriptions[key]
        if subscription is None:
            logger.info("webhook deleted; its pending retry is dropped", extra={"webhook_id": key[1]})
            continue
        deliveries.append(
            Delivery(
                subscription,
                str(body["event_id"]),
                str(body["type"]),
                str(body["body"]),
                attempt=int(body["attempt"]) + 1,
                replay_of=body.get("replay_of"),
                source=message.message_id,
            )
        )
    if deliveries:
        failed |= deliver_all(deliveries)
    return failed


def replay(business_id: str, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """Send a logged delivery again now (same webhook-id and body); returns the new attempt."""
    subscription = repo.require_subscription(business_id, webhook_id)
    logged = repo.get_delivery(business_id, webhook_id, delivery_id)
    if logged is None:
        raise NotFound("delivery not found", {"delivery_id": delivery_id})
    delivery = Delivery(
        subscription,
        str(logged["event_id"]),
        str(logged["type"]),
        str(logged["body"]),
        attempt=1,
        replay_of=delivery_id,
        source=delivery_id,
    )
    if deliver_all([delivery]):
        raise Throttled("the replay failed and could not be queued for retry; try again")
    return delivery.attempt_record
