"""Webhook subscriptions and their delivery log (docs/design.md#webhooks)."""

from __future__ import annotations

from typing import Any

from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.principal import ADMINS, Principal
from loyalty.domain.webhooks.signing import new_secret
from loyalty.repository import webhooks as repo
from loyalty.schemas.common import Page
from loyalty.schemas.webhooks import DeliveryAttempt, Webhook, WebhookCreate
from loyalty.services import webhook_dispatch
from loyalty.services.webhook_dispatch.deliveries import check_webhook_url

MAX_PAGE = 100


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
    check_webhook_url(body.url)
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
