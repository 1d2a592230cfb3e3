"""Fake handlers for the local stack's tests; each appends what it saw to FAKE_RECORD_FILE."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _record(kind: str, **payload: Any) -> None:
    with open(os.environ["FAKE_RECORD_FILE"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": kind, **payload}) + "\n")


def stream_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event["Records"]
    for record in records:
        image = record["dynamodb"].get("NewImage") or {}
        pk = record["dynamodb"]["Keys"]["PK"]["S"]
        _record("stream", pk=pk, batch=len(records), name=record["eventName"])
        if (image.get("fail") or {}).get("S") == "raise":
            raise RuntimeError("fake function error")
        if (image.get("fail") or {}).get("S") == "always":
            # Report this record and stop: the ones after it are retried with it.
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}


def queue_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        _record("sqs", body=record["body"], receives=record["attributes"].get("ApproximateReceiveCount"))
        if record["body"].startswith("sleep:"):  # keeps the stack busy for that long
            time.sleep(float(record["body"].split(":", 1)[1]))
        if "poison" in record["body"]:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def upload_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" not in event:  # the Nightly schedule's Input
        _record("schedule", event=event)
        return {"ran": event}
    for record in event["Records"]:
        s3 = record["s3"]
        _record("s3", bucket=s3["bucket"]["name"], key=s3["object"]["key"], event=record["eventName"])
    return {}


def echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    seen = {
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "pathParameters": event.get("pathParameters"),
        "queryStringParameters": event.get("queryStringParameters"),
        "claims": ((event["requestContext"].get("authorizer") or {}).get("jwt") or {}).get("claims"),
        "body": event.get("body"),
        "isBase64Encoded": event["isBase64Encoded"],
        "headers": event["headers"],
        "cookies": event.get("cookies"),
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(seen)}


_invocations = 0  # module state: survives between invocations in one container


def container_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Says which container ran it; `?sleep=S`, `?crash=1` (the process exits) and `?aws=N`
    (N DynamoDB requests) shape the invocation."""
    global _invocations
    _invocations += 1
    query = event.get("queryStringParameters") or {}
    if "crash" in query:
        os._exit(3)
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    if "aws" in query:
        import boto3

        client = boto3.client("dynamodb")
        for _ in range(int(query["aws"])):
            client.describe_table(TableName=os.environ["TABLE_NAME"])
    names = ("TABLE_NAME", "AWS_ENDPOINT_URL", "LOYALTY_LOCAL_STACK", "FAKE_RECORD_FILE")
    seen = {
        "pid": os.getpid(),
        "invocations": _invocations,
        "environment": {name: os.environ.get(name) for name in names},
        "sys_path": sys.path,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(seen)}
