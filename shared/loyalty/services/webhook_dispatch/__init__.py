"""Webhook delivery: stream batches, the retry queue and replays (docs/design.md#webhooks).

A batch's deliveries all run in parallel (a thread pool over kept-alive connections);
each failure is handed to the retry queue with exponential backoff, or to the
dead-letter queue after the last attempt, and every attempt is logged. A stream
record counts as failed only when one of its hand-offs to a queue failed: Lambda then
sends it again (same event ids), while records already handed off are never re-sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.adapters import queues
from loyalty.domain.errors import NotFound, Throttled
from loyalty.domain.records import CatalogRecord, SubscriptionRecord
from loyalty.domain.webhooks.events import business_of, derive, wants
from loyalty.observability import logger
from loyalty.repository import webhooks as repo
from loyalty.repository.base import record_business, stream_change
from loyalty.repository.ranked_statuses import get_catalog
from loyalty.services.webhook_dispatch.deliveries import Delivery, body_of, deliver_all


class _PerBatch:
    """Subscriptions and status catalogs, read at most once per business per batch."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, list[SubscriptionRecord]] = {}
        self.catalogs: dict[str, CatalogRecord] = {}

    def subscriptions_of(self, business_id: str) -> list[SubscriptionRecord]:
        if business_id not in self.subscriptions:
            self.subscriptions[business_id] = repo.all_subscriptions(business_id)
        return self.subscriptions[business_id]

    def definitions_of(self, business_id: str) -> Mapping[str, Any]:
        if business_id not in self.catalogs:
            self.catalogs[business_id] = get_catalog(business_id)
        return dict(self.catalogs[business_id].get("definitions") or {})


def dispatch_stream_records(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Deliver the events of a stream batch; return the eventIDs that must be retried."""
    cache = _PerBatch()
    deliveries: list[Delivery] = []
    for record in records:
        business_id = record_business(record)
        if business_id is None:
            continue
        subscriptions = cache.subscriptions_of(business_id)
        if not subscriptions:
            continue  # the common case: no one listens, no images read, nothing sent
        change = stream_change(record)
        if business_of(change) != business_id:
            continue  # not an item that makes events
        holds_statuses = bool((change.new or {}).get("statuses"))
        definitions = cache.definitions_of(business_id) if holds_statuses else {}
        for event in derive(change, definitions):
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
    subscriptions: dict[tuple[str, str], SubscriptionRecord | None] = {}
    deliveries: list[Delivery] = []
    for message in messages:
        body = message.body
        remaining = float(body.get("due_at") or 0) - clock()
        if remaining > 1:
            # Longer than SQS can delay a message: wait again for what remains.
            try:
                queues.retry_webhook(body, int(remaining))
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
