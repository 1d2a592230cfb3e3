"""Fixtures shared by the integration tests that deliver webhooks to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.harness import Aws
from local.webhook_receiver import Receiver, running_receiver


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
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
