"""Read the table's DynamoDB stream from moto and shape records as Lambda receives them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def _lambda_shape(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    from moto.core.utils import unix_time

    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = unix_time(created)  # moto keeps naive UTC times
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
    """Follows a table's stream from TRIM_HORIZON; `read()` returns what is new.

    The records are read where moto keeps them, in this process (the engine runs moto's
    server): through GetRecords each record was serialised to JSON by moto and parsed back
    by botocore, a sixth of the stack's CPU during an import, all to be filtered out
    mostly. The read takes moto's DynamoDB lock, so a transaction that fails and rolls its
    records back is never seen half way. Records keep the shape GetRecords gave them
    (DynamoDB JSON images, binary values base64 as in Lambda's own events).
    """

    def __init__(self, stream_arn: str) -> None:
        self.stream_arn = stream_arn
        # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
        parts = stream_arn.split(":", 5)
        self._region, self._account = parts[3], parts[4]
        self._table_name = parts[5].split("/")[1]
        self._shard: Any = None
        self._position = 0

    def read(self) -> list[dict[str, Any]]:
        from moto.dynamodb.models import dynamodb_backends

        from local.harness import moto_lock

        with moto_lock():
            table = dynamodb_backends[self._account][self._region].get_table(self._table_name)
            shard = table.stream_shard
            if shard is not self._shard:  # the stream was (re)enabled: a new shard from its start
                self._shard, self._position = shard, 0
            if shard is None:
                return []
            records = shard.items[self._position :]
            self._position += len(records)
        return [_lambda_shape(r.to_json(), self.stream_arn) for r in records]


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
