"""Registration and cards: anonymous sign-up, registration, packing, read, block, attach, replace
(docs/design.md#cards)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CardNumberParam, CustomerId
from loyalty.api.resolver import create_app
from loyalty.config import TableSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.cards import Card, CardAttach, CardBatch, CardBatchReport, CardPatch, CardReplacement
from loyalty.schemas.customers import Customer
from loyalty.schemas.registration import AnonymousSignup, Registration
from loyalty.services import cards, registration

configure(TableSettings)
router = APIGatewayHttpRouter()


@router.post("/v1/anonymous-customers")
def anonymous_signup(body: AnonymousSignup, principal: CurrentPrincipal) -> tuple[Customer, int]:
    return registration.anonymous_signup(principal, body), 201


@router.post("/v1/registrations")
def register(body: Registration, principal: CurrentPrincipal) -> tuple[Customer, int]:
    registered = registration.register(principal, body)
    return registered.customer, 201 if registered.created else 200


@router.post("/v1/card-batches")
def pack_cards(body: CardBatch, principal: CurrentPrincipal) -> tuple[CardBatchReport, int]:
    return cards.pack_cards(principal, body), 201


@router.get("/v1/cards/<number>")
def get_card(number: CardNumberParam, principal: CurrentPrincipal) -> Card:
    return cards.get_card(principal, number)


@router.patch("/v1/cards/<number>")
def patch_card(number: CardNumberParam, body: CardPatch, principal: CurrentPrincipal) -> Card:
    return cards.patch_card(principal, number, body)


@router.post("/v1/customers/<customer_id>/cards")
def attach_card(
    customer_id: CustomerId, body: CardAttach, principal: CurrentPrincipal
) -> tuple[Customer, int]:
    return cards.attach_card(principal, customer_id, body), 201


@router.post("/v1/customers/<customer_id>/cards/<number>/replacement")
def replace_card(
    customer_id: CustomerId, number: CardNumberParam, body: CardReplacement, principal: CurrentPrincipal
) -> tuple[Customer, int]:
    return cards.replace_card(principal, customer_id, number, body), 201


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
