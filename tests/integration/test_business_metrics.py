"""Business metrics (loyalty/observability.py) as the functions print them in EMF, and the
runbook's recovery steps (README "Runbook") done the way an operator would."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import boto3
import pytest

from local.events import s3_put_event, sqs_event
from local.runtime import invoke
from local.webhook_receiver import Receiver
from loyalty.observability import BUSINESS_METRICS
from tests.support import Api, Aws
from tests.support.points import purchase
from tests.support.webhooks import Dispatch, subscribe

DECLARED = {m.name: m for m in BUSINESS_METRICS}
Emitted = Callable[[], Counter[tuple[str, str | None]]]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Emitted:
    """Metrics on (the suite runs with them off); returns the totals printed since the last call,
    by (metric, its dimension's value), after checking each EMF line's dimensions."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()

    def read() -> Counter[tuple[str, str | None]]:
        totals: Counter[tuple[str, str | None]] = Counter()
        for line in capsys.readouterr().out.splitlines():
            if '"_aws"' not in line:
                continue
            doc = json.loads(line)
            (directive,) = doc["_aws"]["CloudWatchMetrics"]
            ((metric,),) = [directive["Metrics"]]
            declared = DECLARED[metric["Name"]]
            # Only the service and the metric's own low-cardinality dimension, never an id
            (dimensions,) = directive["Dimensions"]
            assert set(dimensions) == {"service"} | ({declared.dimension} if declared.dimension else set())
            value = doc.get(declared.dimension) if declared.dimension else None
            assert value is None or value in declared.values, (metric["Name"], value)
            totals[(metric["Name"], value)] += int(sum(doc[metric["Name"]]))
        return totals

    return read


def test_customers_created_are_counted_by_source(api: Api, emitted: Emitted) -> None:
    # When staff create one, a customer registers, a device signs up, and a duplicate is refused
    api.ok("POST", "/v1/customers", {"email": "ann@example.com"})
    api.ok("POST", "/v1/registrations", {"email": "bob@example.com"})
    api.ok("POST", "/v1/anonymous-customers", {"device_id": "dev-1"}, role="service")
    assert api("POST", "/v1/customers", {"email": "ann@example.com"}).status == 409
    # Then each creation is counted once by where it came from, the refusal not at all
    assert emitted() == {
        ("CustomersCreated", "staff"): 1,
        ("CustomersCreated", "registration"): 1,
        ("CustomersCreated", "anonymous"): 1,
    }


def test_import_rows_are_counted_by_outcome_and_the_import_by_its_end(api: Api, emitted: Emitted) -> None:
    rows = [{"email": "a@example.com"}, {"email": "b@example.com"}, {"email": "not-an-email"}]
    # When a dry run, then the import itself, then the same rows again are posted
    api.ok("POST", "/v1/imports", {"customers": rows, "dry_run": True}, role="admin")
    assert emitted() == {}  # a dry run writes nothing, so counts nothing
    api.ok("POST", "/v1/imports", {"customers": rows}, role="admin")
    first = emitted()
    api.ok("POST", "/v1/imports", {"customers": rows[:2]}, role="admin")
    # Then rows are counted by outcome, created customers as imported, and each import once
    assert first == {
        ("ImportRows", "created"): 2,
        ("ImportRows", "failed"): 1,
        ("CustomersCreated", "import"): 2,
        ("ImportsFinished", "completed"): 1,
    }
    assert emitted() == {("ImportRows", "unchanged"): 2, ("ImportsFinished", "completed"): 1}


def test_an_import_that_fails_is_counted_failed(api: Api, aws: Aws, emitted: Emitted) -> None:
    # Given an uploaded CSV with a header and no rows
    ticket = api.ok("POST", "/v1/imports/uploads", {"filename": "c.csv"}, role="admin")
    bucket, key = aws.refs["ImportBucket"], f"uploads/biz-1/{ticket['import_id']}.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"email\n")
    # When its S3 event arrives
    invoke(aws.specs["CustomerImportFunction"], s3_put_event(bucket, key, 6))
    # Then the failed import is counted (the ImportsFailedAlarm reads this)
    assert emitted() == {("ImportsFinished", "failed"): 1}


def test_restarting_a_stuck_import_from_the_queue_finishes_it(api: Api, aws: Aws, emitted: Emitted) -> None:
    # Given an uploaded CSV whose S3 event never arrived (the import waits, `pending`)
    ticket = api.ok("POST", "/v1/imports/uploads", {"filename": "c.csv"}, role="admin")
    bucket, key = aws.refs["ImportBucket"], f"uploads/biz-1/{ticket['import_id']}.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"email\nx1@example.com\nx2@example.com\n")
    # When the operator sends the runbook's message to ImportChunkQueue and it is consumed
    sqs = boto3.client("sqs")
    url, arn = aws.refs["ImportChunkQueue"], aws.refs["ImportChunkQueue.Arn"]
    body = json.dumps({"business_id": "biz-1", "import_id": ticket["import_id"]})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert invoke(aws.specs["CustomerImportFunction"], sqs_event(messages, arn)) == {"batchItemFailures": []}
    # Then the import ran to the end from its checkpoint
    report = api.ok("GET", f"/v1/imports/{ticket['import_id']}")
    assert (report["state"], report["created"]) == ("completed", 2)
    assert emitted()[("ImportsFinished", "completed")] == 1


def test_invitations_are_counted_sent_and_not_sent(api: Api, emitted: Emitted) -> None:
    # Given two imported customers
    ann = api.ok("POST", "/v1/customers", {"email": "ann@example.com"})["customer_id"]
    bob = api.ok("POST", "/v1/customers", {"email": "bob@example.com"})["customer_id"]
    emitted()
    # When one is invited, then the sender's SES identity is removed after it was saved
    # (settings refuse an unverified sender) and the other is invited
    import boto3

    ses = boto3.client("ses")
    api.ok("POST", f"/v1/customers/{ann}/invitations")
    ses.verify_email_identity(EmailAddress="revoked@example.com")
    api.ok("PUT", "/v1/settings/invitations", {"sender": "revoked@example.com"}, role="admin")
    ses.delete_identity(Identity="revoked@example.com")
    assert api("POST", f"/v1/customers/{bob}/invitations").status == 409
    # Then one invitation is counted sent and one not sent
    assert emitted() == {("InvitationsSent", "invitation"): 1, ("InvitationsNotSent", "invitation"): 1}


def test_webhook_deliveries_are_counted_by_outcome(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch, emitted: Emitted
) -> None:
    # Given a receiver that fails once, then recovers
    subscribe(api, receiver, events=["customer.created"])
    receiver.statuses = [503]
    api.ok("POST", "/v1/customers", {"email": "cy@example.com"})
    emitted()
    # When the stream and then the retry are dispatched
    dispatch.pump()
    assert emitted() == {("WebhookDeliveries", "retrying"): 1}
    dispatch.retry()
    # Then the retry is counted delivered
    assert emitted() == {("WebhookDeliveries", "delivered"): 1}


def test_a_dead_lettered_webhook_redriven_to_the_retry_queue_is_delivered(
    api: Api, aws: Aws, local_stack: None, receiver: Receiver, dispatch: Dispatch, emitted: Emitted
) -> None:
    # Given a delivery that failed all 3 attempts and sits in the dead-letter queue
    subscribe(api, receiver, events=["customer.created"])
    receiver.default_status = 500
    api.ok("POST", "/v1/customers", {"email": "dee@example.com"})
    dispatch.pump()
    dispatch.retry()
    dispatch.retry()
    (parked,) = dispatch.messages("WebhookDeadLetterQueue")
    assert emitted()[("WebhookDeliveries", "dead")] == 1
    # When the endpoint is back and the operator redrives the queue (a message move keeps the body)
    receiver.default_status = 200
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=aws.refs["WebhookRetryQueue"], MessageBody=parked["Body"])
    sqs.delete_message(QueueUrl=aws.refs["WebhookDeadLetterQueue"], ReceiptHandle=parked["ReceiptHandle"])
    assert dispatch.retry() == {"batchItemFailures": []}
    # Then the event arrives once more with the same webhook-id, and is counted delivered
    assert receiver.received[-1].status == 200 and receiver.received[-1].verified is True
    assert receiver.received[-1].webhook_id == receiver.received[0].webhook_id
    assert emitted() == {("WebhookDeliveries", "delivered"): 1}
    assert dispatch.messages("WebhookDeadLetterQueue") == []


def test_points_earned_and_redeemed_are_counted_once(api: Api, emitted: Emitted) -> None:
    # Given points settings (1 point per unit, no pending days) and an active customer
    settings = {
        "points_per_unit": 1,
        "rounding": "down",
        "pending_days": 0,
        "expiry": {"policy": "never"},
        "return_policy": "allow_debt",
    }
    api.ok("PUT", "/v1/settings/points", settings, role="admin")
    cid = api.ok("POST", "/v1/registrations", {"email": "pts@example.com"})["customer_id"]
    emitted()
    bought = purchase("till-1", 100)
    # When a purchase earns, is replayed, and a hold is made and voided
    api.ok("POST", f"/v1/customers/{cid}/purchases", bought, role="service")
    api.ok("POST", f"/v1/customers/{cid}/purchases", bought, role="service")
    redemption = {"external_id": "rd-1", "points": 30, "reward": "coffee", "hold": True}
    api.ok("POST", f"/v1/customers/{cid}/redemptions", redemption, role="service")
    api.ok("POST", f"/v1/customers/{cid}/redemptions/rd-1/void")
    # Then the points are counted once each: earned, redeemed, given back
    assert emitted() == {
        ("PointsEarned", None): 100,
        ("PointsRedeemed", None): 30,
        ("PointsRedemptionsReversed", None): 30,
    }
