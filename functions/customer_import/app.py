"""Imports: JSON rows, CSV uploads (S3 event), continuation chunks (SQS) (docs/design.md#imports).

One function serves three event sources; it tells them apart by the event's shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import ResourceId
from loyalty.api.resolver import create_app
from loyalty.config import ImportSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.imports import (
    ImportContinuation,
    ImportReport,
    ImportRequest,
    UploadRequest,
    UploadTicket,
)
from loyalty.services.imports import json_imports, runs, uploads

configure(ImportSettings)
router = APIGatewayHttpRouter()


@router.post("/v1/imports")
def import_json(body: ImportRequest, principal: CurrentPrincipal) -> ImportReport:
    return json_imports.import_json(
        principal,
        body,
        idempotency_key=router.current_event.headers.get("idempotency-key"),
        remaining_ms=router.lambda_context.get_remaining_time_in_millis,
        request_id=router.lambda_context.aws_request_id,
    )


@router.post("/v1/imports/uploads")
def start_upload(principal: CurrentPrincipal, body: UploadRequest | None = None) -> tuple[UploadTicket, int]:
    return uploads.start_upload(principal, body), 201


@router.get("/v1/imports/<import_id>")
def get_import(import_id: ResourceId, principal: CurrentPrincipal) -> ImportReport:
    return runs.get_import(principal, import_id)


app = create_app()
app.include_router(router)
processor = BatchProcessor(event_type=EventType.SQS)


def continue_import(record: SQSRecord, lambda_context: LambdaContext) -> None:
    job = ImportContinuation.model_validate_json(record.body)
    # ImportBusy propagates: the message comes back after its visibility timeout.
    uploads.resume(job, lambda_context.get_remaining_time_in_millis, lambda_context.aws_request_id)


def _source(event: dict[str, Any]) -> str:
    records = event.get("Records") or [{}]
    return str(records[0].get("eventSource") or ("http" if "requestContext" in event else ""))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source = _source(event)
    if source == "aws:sqs":
        return dict(process_partial_response(event, continue_import, processor, context))
    if source == "aws:s3":
        for record in S3Event(event).records:
            uploads.process_upload(
                unquote_plus(record.s3.get_object.key),
                remaining_ms=context.get_remaining_time_in_millis,
                request_id=context.aws_request_id,
            )
        return {"status": "ok"}
    return app.resolve(event, context)
