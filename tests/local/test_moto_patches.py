"""The local stack's moto patches (local.harness): same answers as moto's own, one request at a time.

They patch moto process-wide, so each check runs in a child process: the in-process moto
tests sharing this pytest worker keep moto as it ships.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from local.template import ROOT

pytestmark = pytest.mark.local


def _in_child(check: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", f"from tests.local.test_moto_patches import {check}; {check}()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _table(client: Any) -> None:
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "GSI1PK", "GSI1SK")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, 600, 25):
        items = []
        for i in range(start, start + 25):
            item = {"PK": {"S": f"P#{i % 7}"}, "SK": {"S": f"S#{(i * 37) % 600:04d}"}, "n": {"N": str(i)}}
            if i % 3 == 0:  # a sparse index, as the service's are
                item |= {"GSI1PK": {"S": f"G#{i % 2}"}, "GSI1SK": {"S": f"{(i * 11) % 97:03d}#{i}"}}
            items.append({"PutRequest": {"Item": item}})
        client.batch_write_item(RequestItems={"t": items})


def _all_pages(client: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
    pages = []
    while True:
        out = client.query(TableName="t", **kwargs)
        pages.append(out["Items"])
        if "LastEvaluatedKey" not in out:
            return pages
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def check_queries_answer_as_moto_does() -> None:
    from local.harness import fake_aws_environment

    fake_aws_environment()
    import boto3
    from moto import mock_aws

    from local.harness import fast_moto_queries

    queries: list[dict[str, Any]] = [
        {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "P#3"}}, "Limit": 9},
        {
            "KeyConditionExpression": "PK = :p AND SK BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":p": {"S": "P#5"}, ":a": {"S": "S#0100"}, ":b": {"S": "S#0400"}},
            "ScanIndexForward": False,
            "Limit": 4,
        },
        {
            "KeyConditionExpression": "PK = :p",
            "FilterExpression": "n > :n",
            "ExpressionAttributeValues": {":p": {"S": "P#1"}, ":n": {"N": "300"}},
        },
        {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "P#nothing"}}},
        {
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :g AND GSI1SK > :s",
            "ExpressionAttributeValues": {":g": {"S": "G#1"}, ":s": {"S": "040"}},
            "Limit": 7,
        },
        {
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :g",
            "ExpressionAttributeValues": {":g": {"S": "G#0"}},
            "ScanIndexForward": False,
            "Limit": 10,
        },
    ]
    with mock_aws():
        client = boto3.client("dynamodb")
        _table(client)
        # Given moto's own answers, page by page
        expected = [_all_pages(client, **q) for q in queries]
        scan = client.scan(TableName="t", Limit=50)
        scan_page = (scan["Items"], scan["LastEvaluatedKey"])

        # When queries read only their partition (or the index's items unsorted)
        fast_moto_queries()

        # Then every query answers the same pages, and scans still page in moto's order
        for query, pages in zip(queries, expected, strict=True):
            assert _all_pages(client, **query) == pages, query
        assert sum(len(p) for p in expected[0]) == 86
        scan = client.scan(TableName="t", Limit=50)
        assert (scan["Items"], scan["LastEvaluatedKey"]) == scan_page


def test_queries_answer_as_moto_does_without_sorting_the_table() -> None:
    _in_child("check_queries_answer_as_moto_does")


def check_one_dynamodb_request_at_a_time() -> None:
    import threading

    from local.harness import fake_aws_environment

    fake_aws_environment()
    import boto3
    from moto.server import ThreadedMotoServer

    from local.harness import moto_lock, serialize_moto_requests

    serialize_moto_requests()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}")
    _table(client)
    answers: list[int] = []

    def query() -> None:
        out = client.query(
            TableName="t", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P#2"}}
        )
        answers.append(len(out["Items"]))

    # Given another request's hold on moto's DynamoDB (a write in progress)
    with moto_lock():
        reader = threading.Thread(target=query)
        reader.start()
        # When a query arrives meanwhile, then it waits: it cannot read a table mid-write
        reader.join(0.5)
        assert reader.is_alive() and answers == []
    # And it is answered once the write is done
    reader.join(30)
    assert answers == [86]
    server.stop()


def test_moto_serves_one_dynamodb_request_at_a_time_on_the_local_stack() -> None:
    _in_child("check_one_dynamodb_request_at_a_time")


def _item_answers(client: Any) -> list[dict[str, Any]]:
    """One answer of each operation that returns items, without its request metadata."""
    rich = {
        "PK": {"S": "P#rich"},
        "SK": {"S": "S#rich"},
        "n": {"N": "12.50"},
        "b": {"B": b"\x00\xffbytes"},
        "bs": {"BS": [b"a", b"b"]},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "yes": {"BOOL": True},
        "none": {"NULL": True},
        "errors": {"L": [{"M": {"row": {"N": str(i)}, "message": {"S": f"bad é {i}"}}} for i in range(50)]},
    }
    key = {"PK": rich["PK"], "SK": rich["SK"]}
    answers = [
        client.put_item(TableName="t", Item=rich, ReturnValues="ALL_OLD"),
        client.put_item(TableName="t", Item=rich, ReturnValues="ALL_OLD"),
        client.get_item(TableName="t", Key=key),
        client.get_item(TableName="t", Key={"PK": {"S": "P#none"}, "SK": {"S": "S"}}),
        client.get_item(TableName="t", Key=key, ReturnConsumedCapacity="TOTAL"),
        client.batch_get_item(
            RequestItems={"t": {"Keys": [key, {"PK": {"S": "P#1"}, "SK": {"S": "S#0001"}}]}}
        ),
        client.query(
            TableName="t",
            KeyConditionExpression="PK = :p",
            ExpressionAttributeValues={":p": {"S": "P#4"}},
            Limit=5,
        ),
        client.scan(TableName="t", Limit=3),
        client.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}}]),
        client.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        client.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD"),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def check_item_answers_are_what_moto_answers() -> None:
    from local.harness import fake_aws_environment

    fake_aws_environment()
    import boto3
    from moto import mock_aws

    from local.harness import fast_moto_item_answers

    with mock_aws():
        client = boto3.client("dynamodb")
        _table(client)
        # Given moto's own answers, as botocore reads them
        expected = _item_answers(client)

        # When answers carrying items are dumped as JSON
        fast_moto_item_answers()

        # Then botocore reads the same answers, binary values and sets included
        assert _item_answers(client) == expected
        assert expected[2]["Item"]["b"] == {"B": b"\x00\xffbytes"}


def test_answers_carrying_items_read_as_moto_answers_them() -> None:
    _in_child("check_item_answers_are_what_moto_answers")
