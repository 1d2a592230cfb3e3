"""Ranked statuses (docs/design.md#ranked-statuses): definitions, ranking, assignment (one, bulk),
entitlements; tiers (docs/design.md#tiers): the ladder, a customer's tier and manual tier,
re-evaluations (HTTP); background status and tier jobs (RuleEvaluationQueue); the status
expiry and tier check schedules."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CustomerId, ResourceId, StatusCodeParam
from loyalty.api.resolver import create_app
from loyalty.config import RankedStatusesSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.customers import Customer, CustomerTier
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
from loyalty.schemas.tiers import (
    ManualTierSet,
    TierEvaluation,
    TierEvaluationJob,
    TierEvaluationReport,
    TierLadder,
    TierLadderView,
)
from loyalty.services.ranked_statuses import assignment, definitions, entitlements, jobs
from loyalty.services.tiers import check, customer, evaluation, ladder

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


@router.get("/v1/tiers")
def get_tiers(principal: CurrentPrincipal) -> TierLadderView:
    return ladder.get_ladder(principal)


@router.put("/v1/tiers")
def put_tiers(body: TierLadder, principal: CurrentPrincipal) -> TierLadderView:
    return ladder.put_ladder(principal, body)


@router.post("/v1/tiers/evaluations")
def evaluate_tiers(
    body: TierEvaluation, principal: CurrentPrincipal
) -> tuple[TierEvaluationReport | TierEvaluationJob, int]:
    result = evaluation.evaluate(principal, body)
    return result, 202 if isinstance(result, TierEvaluationJob) else 200


@router.get("/v1/tiers/evaluations/<job_id>")
def get_tier_evaluation(job_id: ResourceId, principal: CurrentPrincipal) -> StatusJob:
    return evaluation.get_job(principal, job_id)


@router.get("/v1/customers/<customer_id>/tier")
def get_customer_tier(customer_id: CustomerId, principal: CurrentPrincipal) -> CustomerTier:
    return customer.get_tier(principal, customer_id)


@router.put("/v1/customers/<customer_id>/tier")
def set_manual_tier(
    customer_id: CustomerId, body: ManualTierSet, principal: CurrentPrincipal
) -> CustomerTier:
    return customer.set_manual(principal, customer_id, body)


@router.delete("/v1/customers/<customer_id>/tier")
def end_manual_tier(customer_id: CustomerId, principal: CurrentPrincipal) -> CustomerTier:
    return customer.end_manual(principal, customer_id)


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
    if event.get("run") == "tier_check":
        millis_left = context.get_remaining_time_in_millis
        return check.run(time_left=lambda: millis_left() / 1000).model_dump()
    if "Records" in event:
        return dict(process_partial_response(event, _job_record, processor, context))
    return app.resolve(event, context)
