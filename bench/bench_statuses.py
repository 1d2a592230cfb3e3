"""Ranked statuses: re-ranking cost, and background rule re-evaluation cost per customer.

Both figures are counts of DynamoDB requests (botocore before-call hooks), measured in
one run on the moto stack:
- re-ranking 50 statuses through `PUT /v1/status-definitions/order`;
- a new rule evaluated in the background (RuleEvaluationQueue) over 10,000 customers of
  whom none match (every request is the cost of checking unchanged customers: index
  pages of 500 whole profiles, catalog reads, progress updates), and over 1,000 of whom
  1% match (writes: several changed customers per TransactWriteItems).

    PYTHONPATH=shared .venv/bin/python -m bench statuses
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import Figure, RequestCounter, counted_stack

BUSINESS = "bench"
STATUSES = 50
CUSTOMERS = 10_000
# The changing run is smaller: moto deep-copies the whole table on every transaction, so a
# 10,000-customer table with writes takes many minutes and gigabytes for no extra insight.
CHANGING_CUSTOMERS, MATCHING = 1_000, 10
TARGET_UNCHANGED = 0.1
_WRITES = ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem", "dynamodb.TransactWriteItems")


def _writes(counter: RequestCounter) -> int:
    return sum(counter.calls[op] for op in _WRITES) + counter.calls["dynamodb.BatchWriteItem"]


def _seed_profiles(table: str, customers: int, matching: int) -> None:
    """Active customers (BatchWriteItem); the first `matching` of them have many followers."""
    import boto3

    from loyalty.domain.clock import now_iso
    from loyalty.repository.base import serialize
    from loyalty.repository.customers import with_index_keys

    at = now_iso()
    client = boto3.client("dynamodb")
    items = [
        with_index_keys(
            {
                "business_id": BUSINESS,
                "customer_id": f"c{i:06d}",
                "program_status": "active",
                "email": f"c{i}@example.com",
                "attributes": {"instagram_followers": 50_000 if i < matching else i % 5000},
                "statuses": {},
                "cards": [],
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
        for i in range(customers)
    ]
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _drain(aws: Any) -> int:
    import boto3

    from local.events import sqs_event
    from local.runtime import invoke

    sqs = boto3.client("sqs")
    url, arn = aws.refs["RuleEvaluationQueue"], aws.refs["RuleEvaluationQueue.Arn"]
    steps = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", []):
        assert invoke(aws.specs["StatusesFunction"], sqs_event(messages, arn)) == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        steps += 1
    return steps


@contextmanager
def _stack(name: str) -> Iterator[tuple[Any, RequestCounter, Any]]:
    with counted_stack(f"bench-st-{name}") as (aws, counter):
        from tests.conftest import Api

        yield aws, counter, Api(aws)


def _rerank() -> dict[str, int]:
    with _stack("rerank") as (_, counter, api):
        for i in range(STATUSES):
            body = {"code": f"s{i:02d}", "name": f"Status {i}", "rank": i + 1}
            api.ok("POST", "/v1/status-definitions", body, role="admin", business=BUSINESS)
        order = [f"s{i:02d}" for i in reversed(range(STATUSES))]
        counter.reset()
        listed = api.ok(
            "PUT", "/v1/status-definitions/order", {"codes": order}, role="admin", business=BUSINESS
        )
        assert [d["code"] for d in listed["items"]] == order
        return {
            "writes": _writes(counter),
            "transactions": counter.calls["dynamodb.TransactWriteItems"],
            "ddb": counter.dynamodb(),
        }


def _evaluate(customers: int, matching: int) -> dict[str, int]:
    with _stack(f"eval-{matching}") as (aws, counter, api):
        _seed_profiles(aws.table_name, customers, matching)
        rule = {"attribute": "instagram_followers", "operator": "gt", "value": 10_000}
        body = {"code": "influencer", "name": "Influencer", "rank": 1, "rule": rule}
        api.ok("POST", "/v1/status-definitions", body, role="admin", business=BUSINESS)
        counter.reset()
        steps = _drain(aws)
        job = api.ok("GET", "/v1/status-definitions", business=BUSINESS)["items"][0]["job"]
        assert job["state"] == "completed" and job["processed"] == customers, job
        assert job["changed"] == matching and job["failed"] == 0, job
        return {
            "ddb": counter.dynamodb() - 2,  # minus the GET above (catalog + jobs)
            "transactions": counter.calls["dynamodb.TransactWriteItems"],
            "steps": steps,
        }


def run() -> list[Figure]:
    rerank = _rerank()
    unchanged = _evaluate(CUSTOMERS, 0)
    changing = _evaluate(CHANGING_CUSTOMERS, MATCHING)
    per_unchanged = unchanged["ddb"] / CUSTOMERS
    per_changed = changing["transactions"] / MATCHING
    extra_per_changed = (changing["ddb"] - changing["transactions"]) / CHANGING_CUSTOMERS
    return [
        Figure(
            f"re-rank {STATUSES} statuses: DynamoDB write requests",
            rerank["writes"],
            "== 1 (one conditional catalog write)",
            rerank["writes"] / 1,
            rerank["writes"] == 1 and rerank["transactions"] == 1,
        ),
        Figure(
            f"re-rank {STATUSES} statuses: all DynamoDB requests",
            rerank["ddb"],
            "info (catalog read, the write, the list returned)",
            None,
            True,
        ),
        Figure(
            f"rule re-evaluation over {CUSTOMERS:,} customers, none change: DynamoDB requests per customer",
            per_unchanged,
            f"<= {TARGET_UNCHANGED}",
            per_unchanged / TARGET_UNCHANGED,
            per_unchanged <= TARGET_UNCHANGED,
        ),
        Figure(
            f"rule re-evaluation, {MATCHING} of {CHANGING_CUSTOMERS:,} change: transactions per changed one",
            per_changed,
            "< 1 (several customers per transaction)",
            per_changed,
            per_changed < 1,
        ),
        Figure(
            f"same run: non-write requests per customer ({CHANGING_CUSTOMERS:,} customers)",
            extra_per_changed,
            f"<= {TARGET_UNCHANGED}",
            extra_per_changed / TARGET_UNCHANGED,
            extra_per_changed <= TARGET_UNCHANGED,
        ),
    ]
