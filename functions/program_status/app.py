"""Program status: staff change, opt-out, exclusion with erasure (docs/design.md#program-status-lifecycle)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CustomerId
from loyalty.api.resolver import create_app
from loyalty.config import TableSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.customers import Customer
from loyalty.schemas.program_status import (
    ExclusionRequest,
    OptOutRequest,
    ProgramStatusChange,
    StatusChangeResult,
)
from loyalty.services import program_status

configure(TableSettings)
router = APIGatewayHttpRouter()


@router.put("/v1/customers/<customer_id>/program-status")
def change_program_status(
    customer_id: CustomerId, body: ProgramStatusChange, principal: CurrentPrincipal
) -> StatusChangeResult:
    return program_status.change_program_status(principal, customer_id, body)


@router.post("/v1/customers/<customer_id>/opt-out")
def opt_out(
    customer_id: CustomerId,
    principal: CurrentPrincipal,
    body: Annotated[OptOutRequest | None, Body()] = None,
) -> StatusChangeResult:
    return program_status.opt_out(principal, customer_id, body)


@router.post("/v1/customers/<customer_id>/exclusion")
def exclude_customer(
    customer_id: CustomerId,
    principal: CurrentPrincipal,
    body: Annotated[ExclusionRequest | None, Body()] = None,
) -> Customer:
    return program_status.exclude_customer(principal, customer_id, body)


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
