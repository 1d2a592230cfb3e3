"""The local stack's wiring, over real HTTP, against a small fake template.

The fake functions record what they receive, so each test can say exactly what the
stream, SQS and S3 pumps, the schedules and the HTTP front delivered.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from local.stack import LocalStack
from local.token import make_token
from tests.local.conftest import FAKES, FakeStack

pytestmark = pytest.mark.local


def _put(stack: LocalStack, pk: str, sk: str, **attrs: str) -> None:
    table = stack.resources()["refs"]["Table"]
    item = {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}
    stack.client("dynamodb").put_item(TableName=table, Item=item)


def _drain_failures(stack: LocalStack) -> list[dict[str, Any]]:
    """Receive and delete every message on the stream's OnFailure queue."""
    queue, sqs = stack.resources()["refs"]["StreamFailureQueue"], stack.client("sqs")
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return bodies


# --- stream -------------------------------------------------------------------------


def test_stream_pump_applies_the_filter_and_batch_size(fake_stack: FakeStack) -> None:
    # Given three profile items and one item the filter does not select
    run = uuid.uuid4().hex[:8]
    for n in range(3):
        _put(fake_stack.stack, f"P#{run}#{n}", "PROFILE")
    _put(fake_stack.stack, f"P#{run}#other", "OTHER")

    # When the pumps have drained
    fake_stack.stack.wait_idle()

    # Then each profile record reached the function once, in batches of at most 2, the other never
    seen = [r for r in fake_stack.records("stream") if r["pk"].startswith(f"P#{run}#")]
    assert sorted(r["pk"] for r in seen) == [f"P#{run}#{n}" for n in range(3)]
    assert all(r["batch"] <= 2 and r["name"] == "INSERT" for r in seen)


def test_a_failing_stream_record_is_retried_then_sent_to_the_failure_queue(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    run = uuid.uuid4().hex[:8]
    # Given a record the function reports as failed every time
    _put(stack, f"BAD#{run}", "PROFILE", fail="always")

    # When the pumps have drained (retries included)
    stack.wait_idle(timeout=20)

    # Then it was tried once plus stream_retries (2) times, and its batch info went to OnFailure
    tries = [r for r in fake_stack.records("stream") if r["pk"] == f"BAD#{run}"]
    assert len(tries) == 1 + stack.stream_retries
    failures = _drain_failures(stack)
    assert [f["DDBStreamBatchInfo"]["batchSize"] for f in failures] == [1]
    assert failures[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"

    # And the stream is not blocked: a later record is delivered
    _put(stack, f"GOOD#{run}", "PROFILE")
    stack.wait_idle()
    assert [r["pk"] for r in fake_stack.records("stream") if r["pk"] == f"GOOD#{run}"] == [f"GOOD#{run}"]


def test_a_function_error_bisects_the_batch_so_good_records_get_through(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    _drain_failures(stack)
    run = uuid.uuid4().hex[:8]
    # Given a good record and one whose invocation raises, written together (one batch of 2)
    table = stack.resources()["refs"]["Table"]
    stack.client("dynamodb").batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": {"PK": {"S": f"OK#{run}"}, "SK": {"S": "PROFILE"}}}},
                {
                    "PutRequest": {
                        "Item": {"PK": {"S": f"RAISE#{run}"}, "SK": {"S": "PROFILE"}, "fail": {"S": "raise"}}
                    }
                },
            ]
        }
    )

    # When the pumps have drained
    stack.wait_idle(timeout=20)

    # Then the batch was split (BisectBatchOnFunctionError): only the raising record was given up
    failures = _drain_failures(stack)
    assert [f["DDBStreamBatchInfo"]["batchSize"] for f in failures] == [1]
    assert any(r["pk"] == f"OK#{run}" for r in fake_stack.records("stream"))


# --- SQS ----------------------------------------------------------------------------------


def test_sqs_pump_deletes_successes_and_dead_letters_poison_messages(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    refs = stack.resources()["refs"]
    sqs = stack.client("sqs")
    run = uuid.uuid4().hex[:8]
    # Given a good message and one the function always reports as failed
    sqs.send_message(QueueUrl=refs["WorkQueue"], MessageBody=f"ok-{run}")
    sqs.send_message(QueueUrl=refs["WorkQueue"], MessageBody=f"poison-{run}")

    # When the pumps have drained
    stack.wait_idle(timeout=20)

    # Then the good one ran once; the poison one ran maxReceiveCount (2) times, then moved to the DLQ
    bodies = [r["body"] for r in fake_stack.records("sqs")]
    assert bodies.count(f"ok-{run}") == 1
    assert bodies.count(f"poison-{run}") == 2
    dead = sqs.receive_message(QueueUrl=refs["WorkDeadLetterQueue"], MaxNumberOfMessages=10).get(
        "Messages", []
    )
    assert [m["Body"] for m in dead] == [f"poison-{run}"]
    attrs = sqs.get_queue_attributes(QueueUrl=refs["WorkQueue"], AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


# --- S3 ----------------------------------------------------------------------------------


def test_a_presigned_put_over_http_invokes_the_function_once_per_object(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    bucket = stack.resources()["refs"]["Uploads"]
    s3 = stack.client("s3")
    run = uuid.uuid4().hex[:8]
    inside, outside = f"uploads/{run}.csv", f"elsewhere/{run}.csv"
    # Given presigned PUT URLs, as a browser or curl would get them
    urls = {
        key: s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        for key in (inside, outside)
    }
    assert urls[inside].startswith(f"{stack.moto_endpoint}/{bucket}/uploads/")

    # When both are uploaded over real HTTP
    for url in urls.values():
        assert requests.put(url, data=b"email\nann@example.com\n", timeout=10).status_code == 200
    stack.wait_idle()

    # Then only the object under the template's prefix invoked the function, once
    seen = [r for r in fake_stack.records("s3") if run in r["key"]]
    assert seen == [{"kind": "s3", "bucket": bucket, "key": inside, "event": "ObjectCreated:Put"}]


# --- schedules ----------------------------------------------------------------------------


def test_schedules_are_listed_and_run_on_demand(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When the schedules are listed
    listed = requests.get(stack.url("/_local/schedules"), timeout=10).json()["items"]
    # Then the template's schedule is there by event name with its function and expression
    assert [(s["name"], s["function"], s["expression"]) for s in listed] == [
        ("Nightly", "UploadFunction", "rate(1 day)")
    ]

    # When it is run now
    response = requests.post(stack.url("/_local/schedules/Nightly"), timeout=30)

    # Then the function got the schedule's Input and its result comes back
    assert response.status_code == 200
    assert response.json()["result"] == {"ran": {"run": "nightly"}}
    assert stack.run_schedule("Nightly") == {"ran": {"run": "nightly"}}

    # And an unknown schedule is a 404 in the error format
    missing = requests.post(stack.url("/_local/schedules/Nope"), timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# --- the HTTP front -----------------------------------------------------------------------


def test_the_event_carries_claims_path_parameters_query_and_binary_body(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    payload = bytes(range(256))
    # When a binary body is posted with a token and a repeated query parameter
    response = requests.post(
        stack.url("/v1/echo/abc?x=1&x=2&y=z"),
        data=payload,
        headers={
            **stack.auth("staff", "biz-9", "u-1"),
            "content-type": "application/octet-stream",
            "cookie": "a=1; b=2",
        },
        timeout=10,
    )

    # Then the function saw an HTTP API 2.0 event as API Gateway builds it
    assert response.status_code == 200
    seen = response.json()
    assert seen["routeKey"] == "POST /v1/echo/{thing}"
    assert seen["pathParameters"] == {"thing": "abc"}
    assert seen["queryStringParameters"] == {"x": "1,2", "y": "z"}
    assert {k: seen["claims"][k] for k in ("sub", "business_id", "role")} == {
        "sub": "u-1",
        "business_id": "biz-9",
        "role": "staff",
    }
    assert seen["isBase64Encoded"] is True and base64.b64decode(seen["body"]) == payload
    assert "authorization" in seen["headers"] and "cookie" not in seen["headers"]
    assert seen["cookies"] == ["a=1", "b=2"]


def test_a_chunked_body_reaches_the_function_whole(fake_stack: FakeStack) -> None:
    # When a body is streamed with Transfer-Encoding: chunked (no Content-Length)
    parts = [b'{"a": ', b'"chunked"', b"}"]
    response = requests.post(
        fake_stack.stack.url("/v1/echo/c"),
        data=iter(parts),
        headers={**fake_stack.stack.auth(), "content-type": "application/json"},
        timeout=10,
    )
    # Then the function got the whole body
    assert response.status_code == 200
    assert json.loads(response.json()["body"]) == {"a": "chunked"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        f"Bearer {make_token('biz-1', 'admin', key='another-secret')}",
        f"Bearer {make_token('biz-1', 'admin', ttl=-60)}",
    ],
    ids=["missing", "garbage", "not-bearer", "wrong-secret", "expired"],
)
def test_a_route_with_the_authorizer_refuses_a_bad_token(
    fake_stack: FakeStack, authorization: str | None
) -> None:
    # When the authorized route is called without a valid token
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(fake_stack.stack.url("/v1/echo/x"), json={}, headers=headers, timeout=10)
    # Then it is a 401 in the service's error format
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_route_with_authorizer_none_needs_no_token(fake_stack: FakeStack) -> None:
    response = requests.get(fake_stack.stack.url("/v1/public"), timeout=10)
    assert response.status_code == 200
    assert response.json()["claims"] is None


def test_unknown_paths_and_methods_answer_in_the_error_format(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    missing = requests.get(stack.url("/v1/nothing-here"), timeout=10)
    wrong_method = requests.delete(stack.url("/v1/public"), timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


def test_a_module_that_cannot_be_imported_fails_its_request_not_the_server(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When the route of a broken module is called
    response = requests.get(stack.url("/v1/broken"), headers=stack.auth(), timeout=10)
    # Then that request is a 500 in the error format, with the traceback in the log
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "loyalty_module_that_does_not_exist" in stack.log_tail(20000)
    # And the server still serves
    assert requests.get(stack.url("/_local/health"), timeout=10).json()["status"] == "ok"
    assert requests.get(stack.url("/v1/public"), timeout=10).status_code == 200


# --- lifecycle ----------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    """Nothing listens and a server could bind it (SO_REUSEADDR, as servers do: closed
    keep-alive connections may linger in TIME_WAIT, which is not a held port)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_schedules_run_on_a_timer_when_asked_and_ctrl_c_stops_cleanly(tmp_path: Path, until) -> None:
    # Given a stack started with --schedules-every 0.3
    records = tmp_path / "records.jsonl"
    stack = LocalStack(
        template=FAKES / "template.yaml",
        outbox_dir=tmp_path / "outbox",
        env={"FAKE_RECORD_FILE": str(records)},
        schedules_every=0.3,
    ).start()
    api_port = stack.port
    moto_port = int(stack.moto_endpoint.rsplit(":", 1)[1])
    assert not _port_is_free(api_port)

    # Then the template's schedule runs by itself, with its Input
    ran = until(lambda: records.exists() and records.read_text().count('"schedule"') >= 2, timeout=15)
    assert ran, stack.log_tail()
    assert '"run": "nightly"' in records.read_text()

    # When it gets Ctrl-C (SIGINT)
    code = stack.stop()

    # Then it exits cleanly and both ports are free again
    assert code == 0, stack.log_tail()
    assert "stopped" in stack.log_tail()
    assert _port_is_free(api_port) and _port_is_free(moto_port)
