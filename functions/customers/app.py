"""Customers: create, search, profile, history, edit (docs/design.md#http-api)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import Cursor, CustomerId, Limit
from loyalty.api.resolver import create_app
from loyalty.config import TableSettings, configure
from loyalty.domain.lifecycle import ProgramStatus
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.common import Page
from loyalty.schemas.customers import AuditEvent, Customer, CustomerCreate, CustomerPatch
from loyalty.services import customers

configure(TableSettings)
router = APIGatewayHttpRouter()


@router.post("/v1/customers")
def create_customer(body: CustomerCreate, principal: CurrentPrincipal) -> tuple[Customer, int]:
    return customers.create_customer(principal, body), 201


@router.get("/v1/customers")
def search_customers(
    principal: CurrentPrincipal,
    status: Annotated[ProgramStatus | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    email: Annotated[str | None, Query(min_length=1, max_length=254)] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    status_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[Customer]:
    return customers.search_customers(
        principal,
        status=status,
        q=q,
        email=email,
        phone=phone,
        status_code=status_code,
        limit=limit,
        cursor=cursor,
    )


@router.get("/v1/customers/<customer_id>")
def get_customer(customer_id: CustomerId, principal: CurrentPrincipal) -> Customer:
    return customers.get_customer(principal, customer_id)


@router.get("/v1/customers/<customer_id>/history")
def customer_history(
    customer_id: CustomerId, principal: CurrentPrincipal, limit: Limit = None, cursor: Cursor = None
) -> Page[AuditEvent]:
    return customers.customer_history(principal, customer_id, limit, cursor)


@router.patch("/v1/customers/<customer_id>")
def patch_customer(customer_id: CustomerId, body: CustomerPatch, principal: CurrentPrincipal) -> Customer:
    return customers.patch_customer(principal, customer_id, body)


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
