"""Invitations: staff invites, settings, the invitee's answer, and the scheduled run.

One handler serves the HTTP API (resolver) and the EventBridge schedule, whose Input is
`{"run": "invitations"}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CustomerId
from loyalty.api.resolver import create_app
from loyalty.config import InvitationFunctionSettings, configure
from loyalty.domain.lifecycle import LifecycleEvent
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.customers import Customer
from loyalty.schemas.invitations import InvitationAnswer, InvitationSettings, InvitationSettingsView
from loyalty.services import invitations

configure(InvitationFunctionSettings)
router = APIGatewayHttpRouter()
# Any string is looked up by its hash: a wrong token is simply unknown (404).
Token = Annotated[str, Path(min_length=1, max_length=256)]


@router.post("/v1/customers/<customer_id>/invitations")
def invite(customer_id: CustomerId, principal: CurrentPrincipal) -> Customer:
    return invitations.invite(principal, customer_id)


@router.post("/v1/invitations/<token>/accept")
def accept(token: Token) -> InvitationAnswer:
    return invitations.answer(token, LifecycleEvent.ACCEPT)


@router.post("/v1/invitations/<token>/decline")
def decline(token: Token) -> InvitationAnswer:
    return invitations.answer(token, LifecycleEvent.DECLINE)


@router.get("/v1/settings/invitations")
def get_settings(principal: CurrentPrincipal) -> InvitationSettingsView:
    return invitations.get_settings(principal)


@router.put("/v1/settings/invitations")
def put_settings(body: InvitationSettings, principal: CurrentPrincipal) -> InvitationSettingsView:
    return invitations.put_settings(principal, body)


# The token in the path is the credential: these routes have no JWT authorizer.
PUBLIC_ROUTES = frozenset({"POST /v1/invitations/{token}/accept", "POST /v1/invitations/{token}/decline"})
app = create_app(public_routes=PUBLIC_ROUTES)
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("run") == "invitations":
        seconds_left = context.get_remaining_time_in_millis
        return invitations.run(time_left=lambda: seconds_left() / 1000).model_dump()
    return app.resolve(event, context)
