"""Registration and cards: anonymous sign-up, registration, packing, read, block, attach, replace."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http import CurrentPrincipal, CustomerId, create_app
from loyalty.models import Customer
from loyalty.observability import logger, metrics
from loyalty.registration_models import (
    AnonymousSignup,
    Card,
    CardAttach,
    CardBatch,
    CardBatchReport,
    CardPatch,
    CardReplacement,
    Registration,
)
from loyalty.services import cards, registration

router = APIGatewayHttpRouter()
CardNumber = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{4,32}$")]


@router.post("/v1/anonymous-customers")
def anonymous_signup(body: AnonymousSignup, principal: CurrentPrincipal) -> tuple[Customer, int]:
    return registration.anonymous_signup(principal, body), 201


@router.post("/v1/registrations")
def register(body: Registration, principal: CurrentPrincipal) -> tuple[Customer, int]:
    return registration.register(principal, body)


@router.post("/v1/card-batches")
def pack_cards(body: CardBatch, principal: CurrentPrincipal) -> tuple[CardBatchReport, int]:
    return cards.pack_cards(principal, body)


@router.get("/v1/cards/<number>")
def get_card(number: CardNumber, principal: CurrentPrincipal) -> Card:
    return cards.get_card(principal, number)


@router.patch("/v1/cards/<number>")
def patch_card(number: CardNumber, body: CardPatch, principal: CurrentPrincipal) -> Card:
    return cards.patch_card(principal, number, body)


@router.post("/v1/customers/<customer_id>/cards")
def attach_card(
    customer_id: CustomerId, body: CardAttach, principal: CurrentPrincipal
) -> tuple[Customer, int]:
    return cards.attach_card(principal, customer_id, body), 201


@router.post("/v1/customers/<customer_id>/cards/<number>/replacement")
def replace_card(
    customer_id: CustomerId, number: CardNumber, body: CardReplacement, principal: CurrentPrincipal
) -> tuple[Customer, int]:
    return cards.replace_card(principal, customer_id, number, body), 201


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
