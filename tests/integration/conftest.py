"""Fixtures shared by the integration tests that deliver webhooks to a real receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.harness import Aws
from local.webhook_receiver import Receiver, running_receiver
from tests.support.webhooks import Dispatch


@pytest.fixture
def webhooks_local(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback targets allowed (as in the local stack), no backoff wait, 3 attempts."""
    from loyalty.config import settings

    monkeypatch.setenv("LOYALTY_LOCAL_STACK", "true")
    monkeypatch.setenv("WEBHOOK_BACKOFF_BASE_SECONDS", "0")
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "3")
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def local_stack(webhooks_local: None) -> None:
    """Webhook settings as in the local stack."""


@pytest.fixture
def dispatch(aws: Aws) -> Dispatch:
    return Dispatch(aws)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def serialised_moto() -> Iterator[None]:
    """moto's DynamoDB one request at a time, reads included (its table copy during a
    transaction is not safe against a concurrent read), as DynamoDB is atomic per request."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    names = (
        "transact_write_items",
        "put_item",
        "update_item",
        "delete_item",
        "get_item",
        "batch_get_item",
        "query",
        "scan",
    )
    saved = {name: getattr(DynamoDBBackend, name) for name in names}

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return run

    for name, method in saved.items():
        setattr(DynamoDBBackend, name, locked(method))
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(DynamoDBBackend, name, method)
