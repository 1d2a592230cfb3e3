"""Read the table's DynamoDB stream from moto and shape records as Lambda receives them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3


def _lambda_shape(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


class StreamReader:
    """Follows every shard of a table's stream from TRIM_HORIZON; `read()` returns what is new."""

    def __init__(self, stream_arn: str) -> None:
        self.stream_arn = stream_arn
        self.client = boto3.client("dynamodbstreams")
        self._iterators: dict[str, str | None] = {}

    def _refresh_shards(self) -> None:
        desc = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in desc.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        self._refresh_shards()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in list(self._iterators.items()):
            while iterator:
                out = self.client.get_records(ShardIterator=iterator, Limit=limit)
                batch = out.get("Records", [])
                records.extend(_lambda_shape(r, self.stream_arn) for r in batch)
                iterator = out.get("NextShardIterator")
                if not batch:
                    break
            self._iterators[shard_id] = iterator
        return records


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style content filtering, the subset Lambda event filters use."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches(sub, value.get(key, _MISSING)) for key, sub in pattern.items())
    if isinstance(pattern, list):
        return any(_match_leaf(rule, value) for rule in pattern)
    return bool(pattern == value)


class _Missing:
    pass


_MISSING = _Missing()


def _match_leaf(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        if value is _MISSING:
            return False
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        if "numeric" in rule:
            ops = rule["numeric"]
            number = float(value)
            checks = {
                "=": number.__eq__,
                ">": number.__gt__,
                ">=": number.__ge__,
                "<": number.__lt__,
                "<=": number.__le__,
            }
            return all(checks[ops[i]](float(ops[i + 1])) for i in range(0, len(ops), 2))
        return False
    return bool(value is not _MISSING and rule == value)


def passes_filters(record: dict[str, Any], filter_criteria: dict[str, Any] | None) -> bool:
    """True when the record matches any of the event source mapping's filters (or none are set)."""
    filters = (filter_criteria or {}).get("Filters") or []
    if not filters:
        return True
    return any(matches(json.loads(f["Pattern"]), record) for f in filters)
