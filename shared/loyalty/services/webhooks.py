"""Webhook subscriptions and their delivery log (DESIGN.md `/v1/webhooks`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from loyalty.auth import ADMINS, Principal
from loyalty.clock import new_id, now_iso
from loyalty.config import settings
from loyalty.models import Page, RequestModel
from loyalty.repository import webhooks as repo
from loyalty.services import webhook_dispatch
from loyalty.webhook_events import EVENT_TYPES
from loyalty.webhook_signing import new_secret
from loyalty.webhook_targets import check_target

MAX_PAGE = 100


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


def _limit(limit: int | None) -> int:
    return max(1, min(limit or 50, MAX_PAGE))


def _view(item: dict[str, Any], with_secret: bool = False) -> Webhook:
    return Webhook(
        webhook_id=item["webhook_id"],
        url=item["url"],
        events=list(item.get("events") or []),
        ignore_actors=list(item.get("ignore_actors") or []),
        created_at=item["created_at"],
        secret=item["secret"] if with_secret else None,
    )


def _attempt(item: dict[str, Any]) -> DeliveryAttempt:
    return DeliveryAttempt.model_validate(
        {k: v for k, v in item.items() if k in DeliveryAttempt.model_fields}
    )


def create_webhook(principal: Principal, body: WebhookCreate) -> Webhook:
    principal.require(ADMINS)
    check_target(body.url, local_stack=settings().local_stack)  # 422 on `url` when refused
    item = {
        "business_id": principal.business_id,
        "webhook_id": new_id(),
        "url": body.url,
        "events": list(dict.fromkeys(body.events)),
        "ignore_actors": list(dict.fromkeys(body.ignore_actors)),
        "secret": new_secret(),
        "created_at": now_iso(),
        "created_by": principal.sub,
    }
    repo.create_subscription(item)
    return _view(item, with_secret=True)


def list_webhooks(principal: Principal, limit: int | None, cursor: str | None) -> Page[Webhook]:
    principal.require(ADMINS)
    page = repo.list_subscriptions(principal.business_id, _limit(limit), cursor)
    return Page[Webhook](items=[_view(i) for i in page.items], next_cursor=page.next_cursor)


def delete_webhook(principal: Principal, webhook_id: str) -> None:
    principal.require(ADMINS)
    repo.delete_subscription(principal.business_id, webhook_id)


def list_deliveries(
    principal: Principal, webhook_id: str, limit: int | None, cursor: str | None
) -> Page[DeliveryAttempt]:
    principal.require(ADMINS)
    repo.require_subscription(principal.business_id, webhook_id)
    page = repo.list_deliveries(principal.business_id, webhook_id, _limit(limit), cursor)
    return Page[DeliveryAttempt](items=[_attempt(i) for i in page.items], next_cursor=page.next_cursor)


def replay_delivery(principal: Principal, webhook_id: str, delivery_id: str) -> DeliveryAttempt:
    principal.require(ADMINS)
    return _attempt(webhook_dispatch.replay(principal.business_id, webhook_id, delivery_id))
