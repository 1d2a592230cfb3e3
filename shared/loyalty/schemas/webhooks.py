"""Webhook subscriptions and their delivery log (docs/design.md#webhooks)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from loyalty.domain.webhooks.events import EVENT_TYPES
from loyalty.schemas.common import RequestModel


def _known_event(value: str) -> str:
    if value != "*" and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; known: *, {', '.join(EVENT_TYPES)}")
    return value


EventType = Annotated[str, AfterValidator(_known_event)]
ActorRef = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class WebhookCreate(RequestModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]
    # Subs (or `role:<role>`) whose own changes this subscriber does not want back.
    ignore_actors: Annotated[list[ActorRef], Field(max_length=20)] = Field(default_factory=list)


class Webhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    ignore_actors: list[str] = Field(default_factory=list)
    created_at: str
    secret: str | None = None  # only in the answer to the create


class DeliveryAttempt(BaseModel):
    delivery_id: str
    webhook_id: str
    event_id: str
    type: str
    attempt: int
    state: str
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    sent_at: str
    replay_of: str | None = None
