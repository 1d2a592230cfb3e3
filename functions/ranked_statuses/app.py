"""Ranked statuses (docs/design.md#ranked-statuses): definitions, ranking, assignment (one, bulk),
entitlements (HTTP); background status jobs (RuleEvaluationQueue); the status expiry schedule."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CustomerId, StatusCodeParam
from loyalty.api.resolver import create_app
from loyalty.config import RankedStatusesSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.customers import Customer
from loyalty.schemas.ranked_statuses import (
    BulkAssignment,
    BulkReport,
    Entitlements,
    StatusAssign,
    StatusCatalog,
    StatusDefinition,
    StatusDefinitionCreate,
    StatusDefinitionPatch,
    StatusJob,
    StatusOrder,
)
from loyalty.services.ranked_statuses import assignment, definitions, entitlements, jobs

configure(RankedStatusesSettings)
router = APIGatewayHttpRouter()


@router.get("/v1/status-definitions")
def list_definitions(principal: CurrentPrincipal) -> StatusCatalog:
    return definitions.list_definitions(principal)


@router.post("/v1/status-definitions")
def create_definition(
    body: StatusDefinitionCreate, principal: CurrentPrincipal
) -> tuple[StatusDefinition, int]:
    return definitions.create_definition(principal, body), 201


@router.put("/v1/status-definitions/order")
def reorder(body: StatusOrder, principal: CurrentPrincipal) -> StatusCatalog:
    return definitions.reorder(principal, body)


@router.patch("/v1/status-definitions/<code>")
def patch_definition(
    code: StatusCodeParam, body: StatusDefinitionPatch, principal: CurrentPrincipal
) -> StatusDefinition:
    return definitions.patch_definition(principal, code, body)


@router.delete("/v1/status-definitions/<code>")
def delete_definition(code: StatusCodeParam, principal: CurrentPrincipal) -> tuple[StatusJob, int]:
    return definitions.delete_definition(principal, code), 202


@router.post("/v1/status-definitions/<code>/assignments")
def bulk_assignments(code: StatusCodeParam, body: BulkAssignment, principal: CurrentPrincipal) -> BulkReport:
    return assignment.bulk_assignments(principal, code, body)


@router.put("/v1/customers/<customer_id>/statuses/<code>")
def assign_status(
    customer_id: CustomerId,
    code: StatusCodeParam,
    principal: CurrentPrincipal,
    body: StatusAssign | None = None,
) -> Customer:
    return assignment.assign_status(principal, customer_id, code, body or StatusAssign())


@router.delete("/v1/customers/<customer_id>/statuses/<code>")
def remove_status(customer_id: CustomerId, code: StatusCodeParam, principal: CurrentPrincipal) -> Customer:
    return assignment.remove_status(principal, customer_id, code)


@router.get("/v1/customers/<customer_id>/entitlements")
def get_entitlements(customer_id: CustomerId, principal: CurrentPrincipal) -> Entitlements:
    return entitlements.get_entitlements(principal, customer_id)


app = create_app()
app.include_router(router)
processor = BatchProcessor(event_type=EventType.SQS)


def _job_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
    jobs.run_job_step(json.loads(record.body), lambda_context.get_remaining_time_in_millis)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    if event.get("run") == "status_expiry":
        return jobs.expire_statuses(context.get_remaining_time_in_millis)
    if "Records" in event:
        return dict(process_partial_response(event, _job_record, processor, context))
    return app.resolve(event, context)
