"""Imports through the real lambda_handler on moto: JSON rows, CSV uploads (S3), continuation (SQS)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from local.events import s3_put_event, sqs_event
from local.runtime import invoke
from tests.support import Api, Aws, load_event, table_items

FUNCTION = "CustomerImportFunction"


def suppress(aws: Aws, kind: str, value: str, business: str = "biz-1") -> None:
    """What an exclusion leaves behind: a keyed hash of the identifier, nothing readable."""
    from loyalty.repository import keys
    from loyalty.repository.base import serialize

    item = {**keys.suppression_key_of(business, kind, value), "entity": "suppression"}
    boto3.client("dynamodb").put_item(TableName=aws.table_name, Item=serialize(item))


def customers_by_email(aws: Aws) -> dict[str, dict[str, Any]]:
    return {i["email"]: i for i in table_items(aws) if i.get("entity") == "customer" and i.get("email")}


def upload(api: Api, aws: Aws, data: bytes, business: str = "biz-1") -> tuple[str, dict[str, Any]]:
    """Start an upload, put the file where the URL points, and return (import id, S3 event)."""
    ticket = api.ok(
        "POST", "/v1/imports/uploads", {"filename": "customers.csv"}, role="admin", business=business
    )
    key = f"uploads/{business}/{ticket['import_id']}.csv"
    assert f"/{key}?" in ticket["upload_url"]
    bucket = aws.refs["ImportBucket"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return ticket["import_id"], s3_put_event(bucket, key, len(data))


def deliver(aws: Aws, event: dict[str, Any]) -> Any:
    return invoke(aws.specs[FUNCTION], event)


def drain_queue(aws: Aws, limit: int = 50) -> int:
    """Deliver continuation messages to the function until the queue is empty."""
    sqs = boto3.client("sqs")
    url, arn = aws.refs["ImportChunkQueue"], aws.refs["ImportChunkQueue.Arn"]
    for delivered in range(limit):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return delivered
        result = deliver(aws, sqs_event(messages, arn))
        assert result == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    raise AssertionError("the import never finished")


def csv_of(n: int, start: int = 1) -> bytes:
    lines = ["Email;First Name;Last Name"] + [
        f"user{i}@example.com;User;N{i}" for i in range(start, start + n)
    ]
    return ("\n".join(lines) + "\n").encode()


# --- JSON -----------------------------------------------------------------------------


def test_json_import_creates_updates_dedupes_suppresses_and_reports_bad_rows(api: Api, aws: Aws) -> None:
    # Given a stored customer and an excluded person's suppressed e-mail
    existing = api.ok("POST", "/v1/customers", {"email": "old@example.com", "first_name": "Old"})
    suppress(aws, "email", "gone@example.com")
    rows = [
        {"email": "new@example.com", "first_name": "New", "phone": "+4915100000001"},  # 1 created
        {"email": "OLD@example.com", "first_name": "Olga"},  # 2 updated (merged)
        {"email": "old@example.com", "first_name": "Olga"},  # 3 unchanged
        {"email": "not-an-email"},  # 4 failed: email
        {"email": "old@example.com", "phone": "+4915100000001"},  # 5 failed: two customers
        {"email": "New@Example.com", "first_name": "New"},  # 6 duplicate of row 1: unchanged
        {"email": "gone@example.com", "first_name": "Gone"},  # 7 suppressed
        {"first_name": "Nobody"},  # 8 failed: no identifier
        {"external_id": "m-9", "colour": "red"},  # 9 failed: unknown field
    ]
    # When an admin imports them
    report = api.ok("POST", "/v1/imports", {"customers": rows}, role="admin")
    # Then every row is accounted for, bad rows by number, field and reason
    assert report["state"] == "completed"
    counts = {k: report[k] for k in ("total", "created", "updated", "unchanged", "suppressed", "failed")}
    assert counts == {"total": 9, "created": 1, "updated": 1, "unchanged": 2, "suppressed": 1, "failed": 4}
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (4, "email"),
        (5, "phone"),
        (8, "identifiers"),
        (9, "colour"),
    ]
    assert "different customer" in report["errors"][1]["message"]
    # And the customers are as the rows say: one new imported customer, the old one merged
    stored = customers_by_email(aws)
    assert set(stored) == {"new@example.com", "old@example.com"}
    assert stored["new@example.com"]["program_status"] == "imported"
    assert stored["new@example.com"]["phone"] == "+4915100000001"
    assert stored["old@example.com"]["first_name"] == "Olga"
    assert stored["old@example.com"]["customer_id"] == existing["customer_id"]
    # And the import itself invited nobody (the invitation run, if enabled, decides later)
    assert not any(i.get("invited_at") or i.get("invitation_count") for i in stored.values())
    # And the history holds the import and the update, naming fields, not their values
    new_history = api.ok("GET", f"/v1/customers/{stored['new@example.com']['customer_id']}/history")
    assert [e["event"] for e in new_history["items"]] == ["import"]
    old_history = api.ok("GET", f"/v1/customers/{existing['customer_id']}/history")
    assert [e["event"] for e in old_history["items"]] == ["update", "import"]
    assert old_history["items"][0]["details"]["fields"] == ["first_name"]
    assert "olga" not in json.dumps(old_history).lower()


def test_a_retry_with_the_same_key_replays_the_first_report_and_says_so(api: Api, aws: Aws) -> None:
    # Given a completed import posted with an Idempotency-Key
    body = {"customers": [{"email": f"u{i}@example.com", "first_name": "U"} for i in range(1, 6)]}
    key = {"idempotency-key": "sync-1"}
    first = api("POST", "/v1/imports", body, role="admin", headers=key)
    before = table_items(aws)
    # When the same body is posted again with the same key (a client retry)
    second = api("POST", "/v1/imports", body, role="admin", headers=key)
    # Then the report is the same, marked as a replay, and no item changed
    assert second.body == first.body and first.status == second.status == 200
    assert second.headers.get("Idempotency-Replayed") == "true"
    assert "Idempotency-Replayed" not in first.headers
    assert table_items(aws) == before
    # And the report can be read back
    assert api.ok("GET", f"/v1/imports/{first.body['import_id']}") == first.body


def test_without_a_key_each_post_is_a_new_import_that_sees_staff_edits(api: Api) -> None:
    # Given a nightly sync posted once, then a customer edited by staff
    body = {"customers": [{"email": "night@example.com", "first_name": "Nina"}]}
    first = api.ok("POST", "/v1/imports", body, role="admin")
    cid = api.ok("GET", "/v1/customers", query={"email": "night@example.com"})["items"][0]["customer_id"]
    api.ok("PATCH", f"/v1/customers/{cid}", {"first_name": "Nora"})
    # When the same file is posted again without a key
    second = api.ok("POST", "/v1/imports", body, role="admin")
    # Then it is a new import that runs again and puts the file's value back
    assert second["import_id"] != first["import_id"]
    assert (second["created"], second["updated"]) == (0, 1)
    assert api.ok("GET", f"/v1/customers/{cid}")["first_name"] == "Nina"


def test_two_admins_sharing_a_key_get_their_own_imports(api: Api) -> None:
    # Given two admins of one business who happen to use the same Idempotency-Key
    key = {"idempotency-key": "import-1"}
    ann = api.ok(
        "POST",
        "/v1/imports",
        {"customers": [{"email": "a1@example.com"}]},
        role="admin",
        sub="ann",
        headers=key,
    )
    bob = api.ok(
        "POST",
        "/v1/imports",
        {"customers": [{"email": "b1@example.com"}]},
        role="admin",
        sub="bob",
        headers=key,
    )
    # Then each import ran (neither got the other's report)
    assert ann["import_id"] != bob["import_id"]
    assert (ann["created"], bob["created"]) == (1, 1)


def test_dry_run_reports_without_writing(api: Api, aws: Aws) -> None:
    # Given rows with a duplicate and a bad one
    rows = [{"email": "a@example.com"}, {"email": "A@example.com", "first_name": "A"}, {"email": "x"}]
    # When they are imported as a dry run
    report = api.ok("POST", "/v1/imports", {"customers": rows, "dry_run": True}, role="admin")
    # Then the report says what would happen, and nothing was written
    assert report["dry_run"] is True
    assert (report["created"], report["updated"], report["failed"]) == (1, 1, 1)
    assert table_items(aws) == []
    # And the real run agrees with it
    real = api.ok("POST", "/v1/imports", {"customers": rows}, role="admin")
    assert (real["created"], real["updated"], real["failed"]) == (1, 1, 1)


def test_rows_are_written_in_batches_not_one_request_per_row(api: Api, aws: Aws) -> None:
    # Given 100 new rows and a counter of DynamoDB requests
    from bench.common import RequestCounter
    from local.harness import reset_caches

    counter = RequestCounter()
    reset_caches()
    try:
        body = {"customers": [{"email": f"b{i}@example.com"} for i in range(100)]}
        # When they are imported
        report = api.ok("POST", "/v1/imports", body, role="admin")
        # Then all are created with far fewer requests than rows
        assert report["created"] == 100
        assert counter.dynamodb() <= 15, counter.calls
    finally:
        counter.close()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"customers": [{"email": "a@example.com"}] * 1001}, 422, "customers"),
        ({"customers": []}, 422, "customers"),
        ({"customers": [{"email": "a@example.com"}], "mode": "fast"}, 422, "mode"),
        ({"customers": ["a@example.com"]}, 422, "customers[0]"),
    ],
)
def test_bad_json_bodies_are_refused_and_store_nothing(
    api: Api, aws: Aws, body: dict[str, Any], status: int, field: str
) -> None:
    response = api("POST", "/v1/imports", body, role="admin")
    assert response.status == status, response
    assert field in [f["field"] for f in response.body["error"]["details"]["fields"]]
    assert table_items(aws) == []


def test_malformed_json_is_400(api: Api) -> None:
    response = api("POST", "/v1/imports", raw_body="{not json", role="admin")
    assert response.status == 400, response


def test_only_admins_and_services_import_and_reports_stay_in_their_business(api: Api) -> None:
    body = {"customers": [{"email": "a@example.com"}]}
    assert api("POST", "/v1/imports", body, role="customer").status == 403
    assert api("POST", "/v1/imports", body, role="staff").status == 403
    report = api.ok("POST", "/v1/imports", body, role="service")
    # Another business cannot see it; unknown ids are 404
    assert api("GET", f"/v1/imports/{report['import_id']}", business="biz-2").status == 404
    assert api("GET", "/v1/imports/does-not-exist").status == 404


def test_sample_event_imports_through_the_handler(aws: Aws) -> None:
    # Given the sample event shipped for `sam local invoke -e`
    result = deliver(aws, load_event("customer_import/json_import.json"))
    # Then it imports two customers and reports the bad row
    body = json.loads(result["body"])
    assert result["statusCode"] == 200, result
    assert (body["created"], body["failed"], body["errors"][0]["row"]) == (2, 1, 3)


# --- CSV uploads --------------------------------------------------------------------------


def test_csv_upload_runs_from_the_s3_event_and_a_second_delivery_changes_nothing(api: Api, aws: Aws) -> None:
    # Given an uploaded CSV with a BOM, aliases, a duplicate and a bad row
    data = (
        "\ufeffE-mail,FirstName,Mobile\r\n"
        "ann@example.com,Ann,+4915100000001\r\n"
        "bob@example.com,Bob,\r\n"
        "ANN@example.com,Annie,\r\n"
        "broken,X,\r\n"
    ).encode()
    import_id, event = upload(api, aws, data)
    assert api.ok("GET", f"/v1/imports/{import_id}")["state"] == "pending"
    # When the S3 event arrives
    deliver(aws, event)
    # Then the import is complete with the per-row outcome
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert report["state"] == "completed" and report["progress"] == 1.0
    counts = (report["total"], report["created"], report["updated"], report["failed"])
    assert counts == (4, 2, 1, 1)
    assert report["errors"] == [{"row": 4, "field": "email", "message": report["errors"][0]["message"]}]
    assert customers_by_email(aws)["ann@example.com"]["first_name"] == "Annie"
    # And each row's outcome is kept with the import (one letter per row, customer ids beside)
    chunks = [i for i in table_items(aws) if i.get("entity") == "import_rows"]
    assert [(c["first_row"], c["outcomes"]) for c in chunks] == [(1, "ccuf")]
    ann = customers_by_email(aws)["ann@example.com"]["customer_id"]
    assert chunks[0]["customer_ids"][0] == chunks[0]["customer_ids"][2] == ann
    # When the same event is delivered again
    before = table_items(aws)
    deliver(aws, event)
    # Then nothing changed
    assert table_items(aws) == before


def test_sample_s3_event_without_a_ticket_is_ignored(aws: Aws) -> None:
    # Given an object event for an import id nobody started / When delivered / Then nothing is written
    deliver(aws, load_event("customer_import/s3_upload.json"))
    assert table_items(aws) == []


def test_a_large_file_continues_through_the_queue_until_done(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.services.imports import runs, session

    # Given runs that can only process one chunk of 4 rows before time runs short
    monkeypatch.setattr(session, "CHUNK_ROWS", 4)
    monkeypatch.setattr(runs, "TIME_RESERVE_MS", 10**9)
    import_id, event = upload(api, aws, csv_of(10))
    # When the upload event is delivered
    deliver(aws, event)
    # Then the first chunk is stored and the rest is queued
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert (report["state"], report["total"], report["created"]) == ("running", 4, 4)
    assert 0 < report["progress"] < 1
    # When the continuation messages are delivered (the last run finds the end of the file)
    assert drain_queue(aws) == 3
    # Then every row was imported exactly once
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert (report["state"], report["total"], report["created"], report["failed"]) == ("completed", 10, 10, 0)
    emails = Counter(i["email"] for i in table_items(aws) if i.get("entity") == "customer")
    assert emails == Counter(f"user{i}@example.com" for i in range(1, 11))


def test_a_crash_mid_file_resumes_from_the_checkpoint_without_duplicates(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.repository import imports as import_repo
    from loyalty.services.imports import session

    # Given chunks of 3 rows and a failure while the third chunk is written
    monkeypatch.setattr(session, "CHUNK_ROWS", 3)
    real_commit = import_repo.commit_writes
    calls = {"n": 0}

    def flaky(writes: Any, at: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("Lambda ran out of memory")
        return real_commit(writes, at)

    monkeypatch.setattr(import_repo, "commit_writes", flaky)
    import_id, event = upload(api, aws, csv_of(10))
    # When the upload runs and crashes
    with pytest.raises(RuntimeError):
        deliver(aws, event)
    halfway = api.ok("GET", f"/v1/imports/{import_id}")
    assert (halfway["state"], halfway["created"]) == ("running", 6)
    # And Lambda retries the event
    deliver(aws, event)
    # Then the import completes with each customer once
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert (report["state"], report["total"], report["created"]) == ("completed", 10, 10)
    assert len([i for i in table_items(aws) if i.get("entity") == "customer"]) == 10


def test_a_duplicate_continuation_message_is_harmless(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.services.imports import runs, session

    # Given an import paused after its first chunk, with its continuation message queued
    monkeypatch.setattr(session, "CHUNK_ROWS", 5)
    monkeypatch.setattr(runs, "TIME_RESERVE_MS", 10**9)
    import_id, event = upload(api, aws, csv_of(8))
    deliver(aws, event)
    message = json.dumps({"business_id": "biz-1", "import_id": import_id})
    # When the same message is sent again (at-least-once delivery)
    boto3.client("sqs").send_message(QueueUrl=aws.refs["ImportChunkQueue"], MessageBody=message)
    drain_queue(aws)
    # Then the import is complete and counted once
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert (report["state"], report["total"], report["created"]) == ("completed", 8, 8)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"email,first_name\n", "no data rows"),
        (b"first_name,last_name\nAnn,Lee\n", "no email, phone or external_id"),
        (bytes(range(256)) * 40, "not UTF-8"),
    ],
)
def test_bad_files_end_in_a_failed_report_saying_why(api: Api, aws: Aws, data: bytes, reason: str) -> None:
    # Given an unusable upload / When its event arrives
    import_id, event = upload(api, aws, data)
    deliver(aws, event)
    # Then the report has failed with the reason, and no customer was written
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert report["state"] == "failed" and reason in report["message"], report
    assert not [i for i in table_items(aws) if i.get("entity") == "customer"]


def test_too_big_files_are_refused_before_reading(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:

    from loyalty.services.imports import uploads

    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 100)
    import_id, event = upload(api, aws, csv_of(20))
    deliver(aws, event)
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert report["state"] == "failed" and "limit" in report["message"]


def test_garbage_after_good_rows_fails_the_file_but_keeps_the_rows_imported(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.domain import csv_rows
    from loyalty.services.imports import session

    # Given 6 good rows, then a binary blob with no line ends
    monkeypatch.setattr(session, "CHUNK_ROWS", 3)
    monkeypatch.setattr(csv_rows, "MAX_LINE_BYTES", 2048)
    import_id, event = upload(api, aws, csv_of(6) + b"\x01" * 10_000)
    # When it is imported
    deliver(aws, event)
    # Then the report failed saying why, and the six customers stay imported and counted
    report = api.ok("GET", f"/v1/imports/{import_id}")
    assert report["state"] == "failed" and "CSV" in report["message"]
    assert (report["created"], report["total"]) == (6, 6)
    assert len(customers_by_email(aws)) == 6


def test_an_exclusion_racing_the_import_is_refused_inside_the_transaction_and_only_that_row(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.repository import imports as import_repo

    # Given a person excluded after the import read the suppression items (the read sees none)
    suppress(aws, "email", "late@example.com")
    real_read = import_repo.read_identifiers

    def stale_read(business_id: str, identifiers: Any) -> Any:
        state = real_read(business_id, identifiers)
        state.suppressed.clear()
        return state

    monkeypatch.setattr(import_repo, "read_identifiers", stale_read)
    rows = [{"email": f"ok{i}@example.com"} for i in range(5)] + [{"email": "late@example.com"}]
    # When the rows are imported (all six customers packed into one transaction)
    report = api.ok("POST", "/v1/imports", {"customers": rows}, role="admin")
    # Then the transaction's suppression check refuses the excluded person, and only them
    assert (report["created"], report["suppressed"], report["failed"]) == (5, 1, 0)
    assert "late@example.com" not in customers_by_email(aws)
    assert len(customers_by_email(aws)) == 5
