"""Webhook subscriptions, their delivery log and replay (docs/design.md#webhooks)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import Cursor, Limit, ResourceId
from loyalty.api.resolver import create_app
from loyalty.config import WebhookSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.common import Page
from loyalty.schemas.webhooks import DeliveryAttempt, Webhook, WebhookCreate
from loyalty.services import webhooks

configure(WebhookSettings)
router = APIGatewayHttpRouter()


@router.post("/v1/webhooks")
def create_webhook(body: WebhookCreate, principal: CurrentPrincipal) -> tuple[Webhook, int]:
    return webhooks.create_webhook(principal, body), 201


@router.get("/v1/webhooks")
def list_webhooks(principal: CurrentPrincipal, limit: Limit = None, cursor: Cursor = None) -> Page[Webhook]:
    return webhooks.list_webhooks(principal, limit, cursor)


@router.delete("/v1/webhooks/<webhook_id>")
def delete_webhook(webhook_id: ResourceId, principal: CurrentPrincipal) -> tuple[None, int]:
    webhooks.delete_webhook(principal, webhook_id)
    return None, 204


@router.get("/v1/webhooks/<webhook_id>/deliveries")
def list_deliveries(
    webhook_id: ResourceId, principal: CurrentPrincipal, limit: Limit = None, cursor: Cursor = None
) -> Page[DeliveryAttempt]:
    return webhooks.list_deliveries(principal, webhook_id, limit, cursor)


@router.post("/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/replay")
def replay_delivery(
    webhook_id: ResourceId, delivery_id: ResourceId, principal: CurrentPrincipal
) -> DeliveryAttempt:
    return webhooks.replay_delivery(principal, webhook_id, delivery_id)


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
