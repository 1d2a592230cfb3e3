"""Fault injection on moto: throttling and transient AWS errors in the middle of real use cases.

Faults are raised inside moto's request handler for the chosen operation, before moto
applies anything, so botocore sees an HTTP error answer exactly as it would see one from
DynamoDB, SQS or SES: its retry policy absorbs a short burst, and a persistent fault
reaches the service. After recovery the same request (or the redelivered event) must leave
nothing lost, nothing duplicated, and an audit trail that matches the data.
"""

from __future__ import annotations

import base64
import importlib
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

from local.events import s3_put_event, sqs_event
from local.runtime import FakeContext, handler_of, invoke
from local.stream import StreamReader, passes_filters
from local.webhook_receiver import Receiver, running_receiver
from tests.support import Api, Aws, load_event, table_items

# service -> moto's request handler class
HANDLERS = {
    "dynamodb": ("moto.dynamodb.responses", "DynamoHandler"),
    "sqs": ("moto.sqs.responses", "SQSResponse"),
    "ses": ("moto.ses.responses", "EmailResponse"),
}
SERVER_ERRORS = {"InternalServerError", "ServiceUnavailable"}


@dataclass
class Fault:
    service: str
    operation: str
    code: str
    times: int
    when: Callable[[str], bool] | None = None
    injected: int = 0

    def error(self) -> Exception:
        from moto.core.exceptions import JsonRESTError, ServiceException

        if self.service == "ses":  # query protocol: moto serialises it from SES's error model
            return ServiceException(self.code, "injected fault")
        if self.service == "dynamodb":
            error: Exception = JsonRESTError(
                f"com.amazonaws.dynamodb.v20120810#{self.code}", "injected fault"
            )
        else:
            error = JsonRESTError(self.code, "injected fault")
        error.code = 500 if self.code in SERVER_ERRORS else 400  # type: ignore[attr-defined]
        return error


@dataclass
class Faults:
    """Makes chosen AWS operations fail (optionally only for requests whose body matches)."""

    monkeypatch: pytest.MonkeyPatch
    planned: list[Fault] = field(default_factory=list)

    def fail(
        self,
        operation: str,
        code: str = "ProvisionedThroughputExceededException",
        *,
        times: int = 1,
        service: str = "dynamodb",
        when: Callable[[str], bool] | None = None,
    ) -> Fault:
        fault = Fault(service, operation, code, times, when)
        self.planned.append(fault)
        module, name = HANDLERS[service]
        handler_class = getattr(importlib.import_module(module), name)
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        original = getattr(handler_class, method)

        def faulty(handler: Any, *args: Any, **kwargs: Any) -> Any:
            body = handler.body.decode() if isinstance(handler.body, bytes) else str(handler.body or "")
            body += str(getattr(handler, "querystring", ""))  # query protocols (SES) parse the form
            if fault.injected < fault.times and (fault.when is None or fault.when(body)):
                fault.injected += 1
                raise fault.error()
            return original(handler, *args, **kwargs)

        self.monkeypatch.setattr(handler_class, method, faulty)
        return fault

    def heal(self) -> None:
        for fault in self.planned:
            fault.times = 0


@pytest.fixture
def faults(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Faults:
    from botocore.retries import standard

    from local.harness import reset_caches

    # Keep botocore's retry policy, without its waits (test time, not behaviour).
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    reset_caches()
    return Faults(monkeypatch)


# --- audit trail -----------------------------------------------------------------------


def history(api: Api, customer_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.ok("GET", f"/v1/customers/{customer_id}/history", query={"cursor": cursor, "limit": 100})
        events.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return events


def assert_audit_matches(api: Api, customer_id: str) -> list[dict[str, Any]]:
    """Versions 1..n with no gap or repeat, each event continuing from the last, ending at the profile."""
    profile = api.ok("GET", f"/v1/customers/{customer_id}")
    events = sorted(history(api, customer_id), key=lambda e: e["version"])
    assert [e["version"] for e in events] == list(range(1, profile["version"] + 1)), events
    for earlier, later in itertools.pairwise(events):
        assert later["from_status"] == earlier["to_status"], (earlier, later)
    assert events[-1]["to_status"] == profile["program_status"]
    return events


def new_customer(api: Api, email: str = "ann@example.com") -> dict[str, Any]:
    return dict(api.ok("POST", "/v1/customers", {"email": email, "first_name": "Ann"}))


def customer_items(aws: Aws) -> list[dict[str, Any]]:
    return [i for i in table_items(aws) if i.get("entity") == "customer"]


# --- program status change -------------------------------------------------------------


def test_a_throttling_burst_is_retried_inside_the_client_and_the_change_applies_once(
    api: Api, faults: Faults
) -> None:
    # Given an active customer, and DynamoDB throttling the next two transactions
    customer = new_customer(api)
    cid = customer["customer_id"]
    api.ok("POST", "/v1/registrations", {"customer_id": cid, "email": "ann@example.com"})
    version = api.ok("GET", f"/v1/customers/{cid}")["version"]
    fault = faults.fail("TransactWriteItems", times=2)
    # When staff disconnect the customer with the version they read
    body = {"status": "inactive", "reason": "asked at the desk", "expected_version": version}
    changed = api.ok("PUT", f"/v1/customers/{cid}/program-status", body)
    # Then the throttles were absorbed by retries and the change applied exactly once
    assert fault.injected == 2
    assert (changed["program_status"], changed["version"]) == ("inactive", version + 1)
    events = assert_audit_matches(api, cid)
    assert [e["event"] for e in events][-1] == "disconnect"
    assert [e["event"] for e in events].count("disconnect") == 1


@pytest.mark.parametrize(
    ("code", "status"), [("ProvisionedThroughputExceededException", 429), ("InternalServerError", 503)]
)
def test_a_persistent_fault_is_a_retryable_answer_and_changes_nothing_then_the_retry_applies_once(
    api: Api, faults: Faults, code: str, status: int
) -> None:
    # Given an active customer, and DynamoDB failing every transaction
    cid = new_customer(api)["customer_id"]
    api.ok("POST", "/v1/registrations", {"customer_id": cid, "email": "ann@example.com"})
    version = api.ok("GET", f"/v1/customers/{cid}")["version"]
    fault = faults.fail("TransactWriteItems", code, times=10**6)
    # When staff change the status (without expected_version: read, then conditional write)
    body = {"status": "inactive", "reason": "left"}
    refused = api("PUT", f"/v1/customers/{cid}/program-status", body)
    # Then the caller is told to retry (never a bare 500) and nothing is stored
    assert fault.injected > 0
    assert refused.status == status, refused
    assert refused.body["error"]["code"] in ("throttled", "unavailable")
    assert api.ok("GET", f"/v1/customers/{cid}")["version"] == version
    # When DynamoDB recovers and the client retries the same request
    faults.heal()
    api.ok("PUT", f"/v1/customers/{cid}/program-status", body)
    # Then it applies once, and the audit trail holds exactly the applied change
    events = assert_audit_matches(api, cid)
    assert [(e["event"], e["to_status"]) for e in events][version:] == [("disconnect", "inactive")]


# --- JSON import -----------------------------------------------------------------------


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {"email": f"user{i}@example.com", "first_name": "User", "last_name": f"N{i}"} for i in range(1, n + 1)
    ]


def test_a_json_import_throttled_mid_chunk_resumes_on_retry_without_loss_or_duplicates(
    api: Api, aws: Aws, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.services.imports import session

    # Given 30 rows in chunks of 10, and DynamoDB throttling every write that holds row 25
    monkeypatch.setattr(session, "CHUNK_ROWS", 10)
    body = {"customers": rows(30)}
    fault = faults.fail("TransactWriteItems", times=10**6, when=lambda raw: "user25@example.com" in raw)
    # When the import is posted with an Idempotency-Key
    key = {"idempotency-key": "nightly-2026-12-01"}
    first = api("POST", "/v1/imports", body, role="admin", headers=key)
    # Then it answers 429 (retry), with the first chunks checkpointed and the report not left running
    assert fault.injected > 0
    assert first.status == 429, first
    imports = [i for i in table_items(aws) if i.get("entity") == "import"]
    assert [(i["state"], i["rows_done"]) for i in imports] == [("failed", 20)]
    assert "same Idempotency-Key" in imports[0]["message"]
    # When the throttling ends and the client posts the same import again with the same key
    faults.heal()
    report = api.ok("POST", "/v1/imports", body, role="admin", headers=key)
    # Then every row is imported exactly once and the report accounts for every row
    assert report["state"] == "completed" and report["total"] == 30 and report["failed"] == 0
    assert report["created"] + report["unchanged"] == 30
    emails = Counter(i["email"] for i in customer_items(aws))
    assert emails == Counter(f"user{i}@example.com" for i in range(1, 31))
    # And each customer has one import event at version 1
    events = [i for i in table_items(aws) if i.get("entity") == "audit_event"]
    assert Counter(e["customer_id"] for e in events) == Counter(
        {c["customer_id"]: 1 for c in customer_items(aws)}
    )
    assert {(e["event"], e["version"]) for e in events} == {("import", 1)}


def test_a_csv_import_out_of_time_continues_through_the_queue_and_survives_a_throttled_checkpoint(
    api: Api, aws: Aws, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.services.imports import session

    # Given an uploaded CSV of 12 rows processed 5 rows a chunk
    monkeypatch.setattr(session, "CHUNK_ROWS", 5)
    ticket = api.ok("POST", "/v1/imports/uploads", {"filename": "c.csv"}, role="admin")
    key = f"uploads/biz-1/{ticket['import_id']}.csv"
    data = ("email,first_name\n" + "".join(f"user{i}@example.com,U{i}\n" for i in range(1, 13))).encode()
    boto3.client("s3").put_object(Bucket=aws.refs["ImportBucket"], Key=key, Body=data)
    spec = aws.specs["CustomerImportFunction"]
    # And a Lambda run that is almost out of time (less than the import's reserve left)
    short = FakeContext(spec.logical_id, timeout_seconds=1)
    # When the upload event is handled
    handler_of(spec)(s3_put_event(aws.refs["ImportBucket"], key, len(data)), short)
    # Then one chunk is stored and the rest waits in the queue
    paused = api.ok("GET", f"/v1/imports/{ticket['import_id']}", role="admin")
    assert (paused["state"], paused["created"]) == ("running", 5)
    sqs = boto3.client("sqs")
    url, arn = aws.refs["ImportChunkQueue"], aws.refs["ImportChunkQueue.Arn"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    # When the continuation runs while DynamoDB throttles the import's checkpoints
    fault = faults.fail("TransactWriteItems", times=10**6, when=lambda raw: "IMPORT#" in raw)
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):
        invoke(spec, sqs_event(messages, arn))
    # Then the invocation fails (SQS will deliver the message again), with nothing lost
    assert fault.injected > 0
    # When DynamoDB recovers and the message comes back
    faults.heal()
    assert invoke(spec, sqs_event(messages, arn)) == {"batchItemFailures": []}
    # Then every row is imported once, and the report says so
    report = api.ok("GET", f"/v1/imports/{ticket['import_id']}", role="admin")
    assert (report["state"], report["total"], report["failed"]) == ("completed", 12, 0)
    assert report["created"] + report["unchanged"] == 12
    assert Counter(i["email"] for i in customer_items(aws)) == Counter(
        f"user{i}@example.com" for i in range(1, 13)
    )


# --- registration with card binding -----------------------------------------------------


def test_a_registration_with_a_card_throttled_then_retried_binds_and_merges_once(
    api: Api, aws: Aws, faults: Faults
) -> None:
    # Given a packed card (owned by a `new` virtual customer)
    api.ok("POST", "/v1/card-batches", {"numbers": ["4000123"]}, role="admin")
    virtual = api.ok("GET", "/v1/cards/4000123")["customer_id"]
    # And DynamoDB throttling every transaction for now
    fault = faults.fail("TransactWriteItems", times=10**6)
    body = {"email": "bo@example.com", "first_name": "Bo", "card_number": "4000123"}
    # When a customer registers with the card
    refused = api("POST", "/v1/registrations", body)
    # Then the answer is 429 and neither the card nor its owner changed
    assert fault.injected > 0 and refused.status == 429, refused
    assert api.ok("GET", "/v1/cards/4000123")["state"] == "issued"
    assert api.ok("GET", f"/v1/customers/{virtual}")["program_status"] == "new"
    # When DynamoDB recovers and the registration is sent again
    faults.heal()
    registered = api.ok("POST", "/v1/registrations", body)
    # Then the card is bound once, the virtual owner merged once, with matching histories
    card = api.ok("GET", "/v1/cards/4000123")
    assert (card["state"], card["customer_id"]) == ("activated", registered["customer_id"])
    merged = api.ok("GET", f"/v1/customers/{virtual}")
    assert (merged["program_status"], merged["merged_into"]) == ("merged", registered["customer_id"])
    assert [e["to_status"] for e in assert_audit_matches(api, virtual)].count("merged") == 1
    assert [e["to_status"] for e in assert_audit_matches(api, registered["customer_id"])] == ["active"]
    assert len([c for c in customer_items(aws) if c.get("email") == "bo@example.com"]) == 1


# --- webhook stream batch --------------------------------------------------------------


def stream_records(aws: Aws, reader: StreamReader) -> list[dict[str, Any]]:
    spec = aws.specs["WebhookDispatchFunction"]
    filters = spec.streams[0].get("FilterCriteria")
    return [r for r in reader.read() if passes_filters(r, filters)]


def test_a_stream_batch_failing_on_a_throttled_read_is_redelivered_and_each_event_arrives_once(
    api: Api, aws: Aws, faults: Faults, webhooks_local: None, receiver: Receiver
) -> None:
    # Given a subscriber, and three customers created (their stream records in one batch)
    created = api.ok("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"]}, role="admin")
    receiver.secret = created["secret"]
    reader = StreamReader(aws.refs["LoyaltyTable.StreamArn"])
    stream_records(aws, reader)  # the subscription itself is not an event
    for i in range(3):
        new_customer(api, f"c{i}@example.com")
    batch = stream_records(aws, reader)
    assert len(batch) == 3
    # And DynamoDB throttling the subscription read
    fault = faults.fail("Query", times=10**6)
    spec = aws.specs["WebhookDispatchFunction"]
    # When the batch is handled
    with pytest.raises(Exception, match="busy"):
        invoke(spec, {"Records": batch})
    # Then nothing was sent
    assert fault.injected > 0 and receiver.received == []
    # When DynamoDB recovers and Lambda delivers the same batch again
    faults.heal()
    assert invoke(spec, {"Records": batch}) == {"batchItemFailures": []}
    # Then each event arrived exactly once, signed, with its stable id
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(r.verified for r in receiver.received)


def test_a_failed_delivery_whose_retry_hand_off_is_throttled_is_redelivered_with_the_same_id(
    api: Api, aws: Aws, faults: Faults, webhooks_local: None
) -> None:
    with running_receiver(statuses=[500]) as receiver:
        # Given a subscriber that fails its first delivery, and SQS throttling the retry hand-off
        created = api.ok("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"]}, role="admin")
        receiver.secret = created["secret"]
        reader = StreamReader(aws.refs["LoyaltyTable.StreamArn"])
        stream_records(aws, reader)
        new_customer(api)
        batch = stream_records(aws, reader)
        fault = faults.fail("SendMessage", "ThrottlingException", times=10**6, service="sqs")
        spec = aws.specs["WebhookDispatchFunction"]
        # When the batch is handled
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        with pytest.raises(BatchProcessingError, match="failed processing"):
            invoke(spec, {"Records": batch})
        # Then the record failed (its failure could not be queued), so Lambda sends it again
        assert fault.injected > 0
        # When SQS recovers and the record comes again
        faults.heal()
        assert invoke(spec, {"Records": [batch[0]]}) == {"batchItemFailures": []}
        # Then the receiver saw the same event id twice: the failed try and the delivered one
        assert [r.status for r in receiver.received] == [500, 200]
        assert len({r.webhook_id for r in receiver.received}) == 1


def test_a_hanging_receiver_times_out_and_the_retry_delivers_the_same_event_once(
    api: Api, aws: Aws, webhooks_local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.adapters import webhook_http
    from loyalty.services.webhook_dispatch import deliveries

    # Given a sender with a short timeout (5 s in production) and a receiver that hangs longer
    quick = webhook_http.Sender(connect_timeout=0.5, timeout=0.5)
    monkeypatch.setattr(deliveries, "sender", lambda: quick)
    with running_receiver(delay_seconds=1.0) as receiver:
        created = api.ok("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"]}, role="admin")
        receiver.secret = created["secret"]
        reader = StreamReader(aws.refs["LoyaltyTable.StreamArn"])
        stream_records(aws, reader)
        new_customer(api)
        spec = aws.specs["WebhookDispatchFunction"]
        # When the stream batch is handled
        result = invoke(spec, {"Records": stream_records(aws, reader)})
        # Then the batch is settled (the failure went to the retry queue) and the attempt logged as a timeout
        assert result == {"batchItemFailures": []}
        log = api.ok("GET", f"/v1/webhooks/{created['webhook_id']}/deliveries", role="admin")["items"]
        assert [(d["state"], d["error"]) for d in log] == [("retrying", "timeout")]
        # When the receiver recovers and the retry queue is processed
        receiver.delay_seconds = 0.0
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=aws.refs["WebhookRetryQueue"], MaxNumberOfMessages=10)[
            "Messages"
        ]
        assert invoke(spec, sqs_event(messages, aws.refs["WebhookRetryQueue.Arn"])) == {
            "batchItemFailures": []
        }
        # Then the event was delivered once, with the id of the timed-out attempt, and logged so
        log = api.ok("GET", f"/v1/webhooks/{created['webhook_id']}/deliveries", role="admin")["items"]
        assert sorted(d["state"] for d in log) == ["delivered", "retrying"]
        delivered = [r for r in receiver.received if r.status == 200 and r.verified]
        assert [r.webhook_id for r in delivered] == [log[0]["event_id"]]
        assert len({d["event_id"] for d in log}) == 1


# --- SES during an invitation run -------------------------------------------------------


def raw_message(request: str) -> str:
    """The e-mail inside a SendRawEmail request: base64 in RawMessage.Data (form-encoded in the
    body, or in moto's parsed query string)."""
    found = re.search(r"RawMessage\.Data(?:=|', \[')([A-Za-z0-9+/=%]+)", request)
    return base64.b64decode(unquote(found.group(1))).decode("utf-8", "replace") if found else ""


def test_ses_failing_for_one_customer_during_a_run_leaves_it_imported_and_the_next_run_invites_it_once(
    api: Api, aws: Aws, faults: Faults
) -> None:
    from moto.ses.models import ses_backends

    # Given invitation runs on, three imported customers, and SES unavailable for one of them
    boto3.client("ses").verify_email_identity(EmailAddress="club@example.com")
    settings = {"enabled": True, "batch_size": 10, "sender": "club@example.com"}
    api.ok("PUT", "/v1/settings/invitations", settings, role="admin")
    ids = [new_customer(api, f"m{i}@example.com")["customer_id"] for i in range(3)]
    fault = faults.fail(
        "SendRawEmail",
        "Throttling",
        times=10**6,
        service="ses",
        when=lambda raw: "To: m1@example.com" in raw_message(raw),
    )

    def run() -> dict[str, Any]:
        return dict(invoke(aws.specs["InvitationFunction"], load_event("invitation/scheduled_run.json")))

    # When the schedule fires
    report = run()
    # Then the others are invited, the failed one is back to imported, with the undo audited
    assert fault.injected > 0
    assert (report["invited"], report["failed"]) == (2, 1)
    statuses = [api.ok("GET", f"/v1/customers/{i}")["program_status"] for i in ids]
    assert statuses == ["pending", "imported", "pending"]
    events = assert_audit_matches(api, ids[1])
    assert [(e["from_status"], e["to_status"]) for e in events][1:] == [
        ("imported", "pending"),
        ("pending", "imported"),
    ]
    # When SES recovers and the next run fires
    faults.heal()
    report = run()
    # Then only the failed customer is invited, and every customer got exactly one e-mail
    assert (report["invited"], report["failed"]) == (1, 0)
    sent = Counter(m.destinations[0] for m in ses_backends["123456789012"]["us-east-1"].sent_messages)
    assert sent == Counter({f"m{i}@example.com": 1 for i in range(3)})
    for cid in ids:
        assert assert_audit_matches(api, cid)[-1]["to_status"] == "pending"
