"""Webhooks on the local stack over real HTTP: API -> table -> stream pump -> dispatch ->
a receiver on 127.0.0.1 verifying signatures with `standardwebhooks`; retries on the retry
queue (moto SQS) keep the webhook-id; a receiver that never recovers ends in the DLQ."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from local.webhook_receiver import Receiver, running_receiver

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir: Path = tmp_path_factory.mktemp("webhooks-stack")
    # No backoff wait and three attempts, so the whole retry path runs in seconds.
    env = {"WEBHOOK_BACKOFF_BASE_SECONDS": "0", "WEBHOOK_MAX_ATTEMPTS": "3"}
    with LocalStack(
        port=0, outbox_dir=workdir / "outbox", log_file=workdir / "stack.log", env=env
    ) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def subscribe(stack: LocalStack, business: str, receiver: Receiver, events: list[str]) -> dict[str, Any]:
    response = stack.session.post(
        stack.url("/v1/webhooks"),
        json={"url": receiver.url, "events": events},
        headers=stack.auth("admin", business),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secret = created["secret"]
    return created


def create_customer(stack: LocalStack, business: str, email: str) -> dict[str, Any]:
    response = stack.session.post(
        stack.url("/v1/customers"), json={"email": email}, headers=stack.auth("staff", business), timeout=10
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_signed_delivery_and_recovery_with_the_same_webhook_id(
    stack: LocalStack, receiver: Receiver, until: Callable[..., Any]
) -> None:
    # Given a subscription to customer.created whose receiver fails its first request
    subscribe(stack, "wh-e2e-1", receiver, ["customer.created"])
    receiver.statuses = [500]
    # When a customer is created through the HTTP API
    customer = create_customer(stack, "wh-e2e-1", "ann@example.com")
    # Then the stream pump delivers it, the failure is retried through the queue, and the
    # receiver gets the same webhook-id again, signed and verified
    assert until(lambda: len(receiver.received) >= 2, timeout=20), stack.log_tail()
    first, second = receiver.received[:2]
    assert (first.status, second.status) == (500, 200)
    assert second.verified is True and second.webhook_id == first.webhook_id
    assert second.payload["type"] == "customer.created"
    assert second.payload["data"]["customer_id"] == customer["customer_id"]
    stack.wait_idle()
    assert len(receiver.received) == 2  # nothing sent twice once it succeeded


def test_receiver_that_never_recovers_ends_in_the_dead_letter_queue(
    stack: LocalStack, receiver: Receiver, until: Callable[..., Any]
) -> None:
    # Given a subscription whose receiver always fails
    hook = subscribe(stack, "wh-e2e-2", receiver, ["customer.created"])
    receiver.default_status = 503
    # When a customer is created
    create_customer(stack, "wh-e2e-2", "bob@example.com")
    # Then three attempts arrive with one webhook-id, and the event is parked in the DLQ
    assert until(lambda: len(receiver.received) >= 3, timeout=30), stack.log_tail()
    assert len({r.webhook_id for r in receiver.received}) == 1
    sqs = stack.client("sqs")
    dlq = stack.resources()["refs"]["WebhookDeadLetterQueue"]

    def parked() -> list[dict[str, Any]]:
        out = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in out.get("Messages", [])]

    messages = until(lambda: [m for m in parked() if m["webhook_id"] == hook["webhook_id"]], timeout=10)
    assert messages and messages[0]["event_id"] == receiver.received[0].webhook_id
    # And the delivery log says dead for the last attempt
    log = stack.session.get(
        stack.url(f"/v1/webhooks/{hook['webhook_id']}/deliveries"),
        headers=stack.auth("admin", "wh-e2e-2"),
        timeout=10,
    ).json()["items"]
    assert log[0]["state"] == "dead" and log[0]["attempt"] == 3
