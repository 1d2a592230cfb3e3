"""The webhook path as AWS runs it, for tests: the table's stream pumped through the template's
filter into the dispatch function, the retry queue read back, and a subscription for a receiver."""

from __future__ import annotations

from typing import Any

import boto3

from local.events import sqs_event
from local.harness import Api, Aws
from local.runtime import invoke
from local.stream import StreamReader, passes_filters
from local.webhook_receiver import Receiver


class Dispatch:
    """Pumps the table's stream into the dispatch function, as the event source mapping does."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.spec = aws.specs["WebhookDispatchFunction"]
        self.reader = StreamReader(aws.refs["LoyaltyTable.StreamArn"])
        self.filters = self.spec.streams[0].get("FilterCriteria")

    def pump(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        records = [r for r in self.reader.read() if passes_filters(r, self.filters)]
        return records, invoke(self.spec, {"Records": records})

    def messages(self, logical_id: str) -> list[dict[str, Any]]:
        out = boto3.client("sqs").receive_message(
            QueueUrl=self.aws.refs[logical_id], MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        return list(out.get("Messages", []))

    def retry(self) -> dict[str, Any]:
        messages = self.messages("WebhookRetryQueue")
        assert messages, "no retry message was queued"
        event = sqs_event(messages, self.aws.refs["WebhookRetryQueue.Arn"])
        return invoke(self.spec, event)


def subscribe(api: Api, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    body = {"url": receiver.url, "events": ["*"], **extra}
    created = api.ok("POST", "/v1/webhooks", body, role="admin")
    receiver.secret = created["secret"]
    return created
