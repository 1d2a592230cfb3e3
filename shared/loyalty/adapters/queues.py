"""Every SQS send of the service: import continuations, ranked-status jobs, webhook retries and
dead letters. Queue URLs come from the function's settings, checked when it starts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loyalty.adapters import aws
from loyalty.config import settings

MAX_DELAY_SECONDS = 900  # SQS's limit; longer waits are re-enqueued with what remains


def _send(queue_url: str, message: Mapping[str, Any], delay_seconds: int = 0) -> None:
    aws.sqs().send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
    )


def continue_import(message: Mapping[str, Any]) -> None:
    """Hand the rest of an import to a fresh run (ImportChunkQueue)."""
    _send(settings().import_queue_url, message)


def run_status_job(message: Mapping[str, Any]) -> None:
    """Hand a ranked-status job step to the RuleEvaluationQueue."""
    _send(settings().rule_queue_url, message)


def retry_webhook(message: Mapping[str, Any], delay_seconds: int) -> None:
    """A retry message; it names the delivery, never the secret (read again at retry)."""
    _send(settings().webhook_retry_queue_url, message, delay_seconds)


def dead_letter_webhook(message: Mapping[str, Any]) -> None:
    _send(settings().webhook_dead_letter_queue_url, message)
