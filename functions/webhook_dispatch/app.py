"""Stream records to signed webhook deliveries; the retry queue sends failed ones again.

Deliveries of a whole batch run in parallel inside the use case; the batch processor
then reports as failed only the records whose failed deliveries could not be queued.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.config import WebhookDispatchSettings, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.services.webhook_dispatch import RetryMessage, dispatch_stream_records, process_retries

configure(WebhookDispatchSettings)
stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
queue_processor = BatchProcessor(event_type=EventType.SQS)


class HandOffFailed(Exception):
    """The record's failed deliveries could not be queued: let Lambda send it again."""


def _settled(failed: set[str], key: str) -> None:
    if key in failed:
        raise HandOffFailed(key)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        failed = process_retries([RetryMessage(r["messageId"], json.loads(r["body"])) for r in records])

        def queued(record: SQSRecord) -> None:
            _settled(failed, record.message_id)

        return process_partial_response(event, queued, queue_processor, context)
    failed = dispatch_stream_records(records)

    def streamed(record: DynamoDBRecord) -> None:
        _settled(failed, str(record.event_id))

    return process_partial_response(event, streamed, stream_processor, context)
