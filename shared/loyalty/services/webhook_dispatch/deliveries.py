"""Delivering events to subscriptions: every delivery of a batch in parallel, each failure
handed to the retry queue with exponential backoff (or the dead-letter queue after the last
attempt), every attempt logged."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.adapters import queues
from loyalty.adapters.webhook_http import SendResult, sender
from loyalty.config import reserved_ports, settings
from loyalty.domain.records import SubscriptionRecord
from loyalty.domain.webhooks import signing
from loyalty.domain.webhooks.events import WebhookEvent
from loyalty.domain.webhooks.targets import Target, UnsafeTarget, check_target
from loyalty.observability import WEBHOOK_DELIVERIES, count, logger
from loyalty.repository import webhooks as repo

# Deliveries in flight at once per function instance; I/O bound, so threads are cheap.
MAX_PARALLEL = 300
LOG_BATCH = 25  # BatchWriteItem's limit
LOG_TTL_SECONDS = 30 * 24 * 3600

DELIVERED = "delivered"
RETRYING = "retrying"
DEAD = "dead"

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="webhook")
    return _executor


@dataclass
class Delivery:
    """One event to one subscription, at a given attempt number (1 is the first try)."""

    subscription: SubscriptionRecord
    event_id: str
    type: str
    body: str
    attempt: int = 1
    replay_of: str | None = None
    source: str = ""  # the stream record or queue message it came from
    outcome: SendResult | None = None
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


def check_webhook_url(url: str) -> Target:
    """The SSRF check with this deployment's allowances (docs/design.md#webhooks); 422 on `url`."""
    return check_target(url, local_stack=settings().local_stack, refused_ports=reserved_ports())


def _check_targets(deliveries: list[Delivery]) -> None:
    """SSRF check again at delivery (DNS may have changed), once per URL per batch."""
    checked: dict[str, Target | str] = {}
    for delivery in deliveries:
        url = str(delivery.subscription["url"])
        if url not in checked:
            try:
                checked[url] = check_webhook_url(url)
            except UnsafeTarget as refused:
                checked[url] = f"target refused: {refused.message}"
        delivery.target = checked[url]


def _send_one(delivery: Delivery) -> SendResult:
    target = delivery.target
    if not isinstance(target, Target):
        return SendResult(None, 0, target or "target not checked")
    stamp = int(time.time())
    secret = str(delivery.subscription["secret"])
    headers = signing.headers(secret, delivery.event_id, stamp, delivery.body)
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


def _hand_off(delivery: Delivery, outcome: SendResult) -> None:
    """A failure goes to the retry queue, or to the dead-letter queue after the last attempt."""
    if outcome.ok:
        delivery.state = DELIVERED
        return
    logger.info("webhook delivery failed", extra=_log_fields(delivery))
    try:
        if delivery.attempt >= settings().webhook_max_attempts:
            delivery.state = DEAD
            queues.dead_letter_webhook({**retry_message(delivery, 0), "error": outcome.error})
        else:
            delivery.state = RETRYING
            delay = backoff_seconds(delivery.attempt)
            queues.retry_webhook(retry_message(delivery, time.time() + delay), delay)
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
    for state, n in Counter(d.state for d in deliveries).items():
        count(WEBHOOK_DELIVERIES, n, state)
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
