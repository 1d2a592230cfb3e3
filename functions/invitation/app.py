"""Invitations: staff invites, settings, the invitee's pages and answer, and the scheduled run.

One handler serves the HTTP API (resolver) and the EventBridge schedule, whose Input is
`{"run": "invitations"}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api import pages
from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CustomerId
from loyalty.api.resolver import create_app
from loyalty.config import InvitationFunctionSettings, configure
from loyalty.domain.lifecycle import LifecycleEvent
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.customers import Customer
from loyalty.schemas.invitations import (
    InvitationAnswer,
    InvitationSettings,
    InvitationSettingsView,
    InviteRequest,
)
from loyalty.services import invitations

configure(InvitationFunctionSettings)
router = APIGatewayHttpRouter()
# Any string is looked up by its hash: a wrong token is simply unknown (404).
Token = Annotated[str, Path(min_length=1, max_length=256)]
PAGE: dict[int, OpenAPIResponse] = {
    200: {
        "description": "A page: the program's name and a button that posts the answer",
        "content": pages.HTML_CONTENT,
    }
}
ANSWER: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The answer: JSON, or a page when the client asks for text/html (the page's form)",
        "content": {"application/json": {"model": InvitationAnswer}, **pages.HTML_CONTENT},
    }
}


@router.post("/v1/customers/<customer_id>/invitations")
def invite(
    customer_id: CustomerId,
    principal: CurrentPrincipal,
    body: Annotated[InviteRequest | None, Body()] = None,
) -> Customer:
    return invitations.invite(principal, customer_id, body)


# GET opens a page and changes nothing (mail scanners prefetch links); its button POSTs.
@router.get("/v1/invitations/<token>/accept", responses=PAGE)
def accept_page(token: Token) -> Response[str]:
    return pages.invitation_page(invitations.open_link(token, LifecycleEvent.ACCEPT))


@router.get("/v1/invitations/<token>/decline", responses=PAGE)
def decline_page(token: Token) -> Response[str]:
    return pages.invitation_page(invitations.open_link(token, LifecycleEvent.DECLINE))


@router.post("/v1/invitations/<token>/accept", responses=ANSWER)
def accept(token: Token) -> Response[InvitationAnswer | str]:
    return pages.answer_response(router.current_event, invitations.answer(token, LifecycleEvent.ACCEPT))


@router.post("/v1/invitations/<token>/decline", responses=ANSWER)
def decline(token: Token) -> Response[InvitationAnswer | str]:
    return pages.answer_response(router.current_event, invitations.answer(token, LifecycleEvent.DECLINE))


@router.get("/v1/settings/invitations")
def get_settings(principal: CurrentPrincipal) -> InvitationSettingsView:
    return invitations.get_settings(principal)


@router.put("/v1/settings/invitations")
def put_settings(body: InvitationSettings, principal: CurrentPrincipal) -> InvitationSettingsView:
    return invitations.put_settings(principal, body)


# The token in the path is the credential: these routes have no JWT authorizer, and a
# browser opens them, so they answer pages (errors too).
PAGE_ROUTES = frozenset(
    f"{method} /v1/invitations/{{token}}/{choice}"
    for method in ("GET", "POST")
    for choice in ("accept", "decline")
)
app = create_app(public_routes=PAGE_ROUTES, page_routes=PAGE_ROUTES)
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("run") == "invitations":
        seconds_left = context.get_remaining_time_in_millis
        return invitations.run(time_left=lambda: seconds_left() / 1000).model_dump()
    return app.resolve(event, context)
