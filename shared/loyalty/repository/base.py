"""Low-level DynamoDB plumbing: (de)serialisation, transactions, queries, cursors, errors.

The low-level client (loyalty.adapters.aws, not the resource API) keeps cold starts short;
items cross this boundary as plain Python dicts.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generic, TypeVar, cast

from botocore.exceptions import ClientError

from loyalty.adapters import aws
from loyalty.config import settings
from loyalty.domain.errors import BadRequest, Conflict, Throttled, Unavailable, ValidationFailed
from loyalty.domain.keyed import derive_key
from loyalty.domain.webhooks.events import StreamChange


@lru_cache(maxsize=1)
def _codec() -> tuple[Any, Any]:
    # boto3.dynamodb.types imports all of boto3: deferred so a handler's cold import stays light.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


MAX_TRANSACTION_ITEMS = 100
T = TypeVar("T")
R = TypeVar("R")


def table_name() -> str:
    return settings().table_name


def _storable(value: int | float) -> Decimal:
    """The number as DynamoDB stores it; refused (422) when DynamoDB could not store it exactly."""
    from boto3.dynamodb.types import DYNAMODB_CONTEXT

    try:
        return DYNAMODB_CONTEXT.create_decimal(Decimal(str(value)))
    except decimal.DecimalException as exc:
        # e.g. 5e-324 in a status modifier or 10**40 in an attribute (found by the fuzzer): not a 500
        message = "numbers are stored with at most 38 digits, between 1e-130 and 1e125 in size"
        raise ValidationFailed(message, [{"field": "number", "message": message}]) from exc


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return _storable(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**38:
        return _storable(value)
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    serializer = _codec()[0]
    return {k: serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> dict[str, Any]:
    return _codec()[0].serialize(_to_dynamo(value))


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()}


def stream_change(record: Mapping[str, Any]) -> StreamChange:
    """A DynamoDB stream record with its keys and images read into plain values."""
    ddb = record.get("dynamodb") or {}
    keys_ = ddb.get("Keys") or {}
    old, new = ddb.get("OldImage"), ddb.get("NewImage")
    created = ddb.get("ApproximateCreationDateTime")
    return StreamChange(
        event_id=str(record.get("eventID") or ""),
        name=str(record.get("eventName") or ""),
        pk=str((keys_.get("PK") or {}).get("S") or ""),
        sk=str((keys_.get("SK") or {}).get("S") or ""),
        old=deserialize(old) if old else None,
        new=deserialize(new) if new else None,
        created=float(created) if isinstance(created, int | float) else None,
    )


def record_business(record: Mapping[str, Any]) -> str | None:
    """The `business_id` field of a stream record's image, read without deserialising the rest."""
    ddb = record.get("dynamodb") or {}
    image = ddb.get("NewImage") or ddb.get("OldImage") or {}
    value = (image.get("business_id") or {}).get("S")
    return value if isinstance(value, str) and value else None


# --- errors --------------------------------------------------------------------------


@dataclass
class TransactionCancelled(Exception):
    """A transaction was cancelled; `reasons[i]` is the code for item i ("None" if fine)."""

    reasons: list[str]
    items: list[dict[str, Any] | None]

    def failed_indexes(self, code: str = "ConditionalCheckFailed") -> list[int]:
        return [i for i, r in enumerate(self.reasons) if r == code]


class ConditionFailed(Exception):
    """A single-item write's condition did not hold."""

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("condition failed")
        self.item = item


def translate(exc: ClientError) -> Exception:
    """Map a ClientError to what callers handle; unknown errors are returned unchanged."""
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "TransactionCanceledException":
        raw = exc.response.get("CancellationReasons", [])
        return TransactionCancelled(
            reasons=[r.get("Code", "None") for r in raw],
            items=[deserialize(r["Item"]) if r.get("Item") else None for r in raw],
        )
    if code == "ConditionalCheckFailedException":
        old = exc.response.get("Item")
        return ConditionFailed(deserialize(old) if old else None)
    if code in ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"):
        return Throttled("the table is busy; retry shortly")
    if code == "TransactionConflictException":
        return Conflict("a concurrent change touched the same items; retry")
    if code in ("InternalServerError", "ServiceUnavailable"):
        # Transient on DynamoDB's side and already retried by the client: the caller may retry
        # (writes are conditional on the version they read, so a retry cannot apply twice).
        return Unavailable("the table is briefly unavailable; retry shortly")
    return exc


# --- transactions (the unit of work) -------------------------------------------------


@dataclass
class Transaction:
    """Collects writes and commits them in one TransactWriteItems (max 100 items)."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def put(self, item: Mapping[str, Any], condition: str | None = None, **expr: Any) -> int:
        op: dict[str, Any] = {"TableName": table_name(), "Item": serialize(item)}
        self._condition(op, condition, **expr)
        return self._add({"Put": op})

    def put_new(self, item: Mapping[str, Any]) -> int:
        return self.put(item, "attribute_not_exists(PK)")

    def update(
        self,
        key: Mapping[str, str],
        update: str,
        condition: str | None = None,
        *,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        op: dict[str, Any] = {"TableName": table_name(), "Key": serialize(key), "UpdateExpression": update}
        self._condition(op, condition, names=names, values=values)
        return self._add({"Update": op})

    def delete(self, key: Mapping[str, str], condition: str | None = None, **expr: Any) -> int:
        op: dict[str, Any] = {"TableName": table_name(), "Key": serialize(key)}
        self._condition(op, condition, **expr)
        return self._add({"Delete": op})

    def check(self, key: Mapping[str, str], condition: str, **expr: Any) -> int:
        op: dict[str, Any] = {"TableName": table_name(), "Key": serialize(key)}
        self._condition(op, condition, **expr)
        return self._add({"ConditionCheck": op})

    def _add(self, op: dict[str, Any]) -> int:
        if len(self.items) >= MAX_TRANSACTION_ITEMS:
            raise BadRequest(f"a change may touch at most {MAX_TRANSACTION_ITEMS} items")
        self.items.append(op)
        return len(self.items) - 1

    @staticmethod
    def _condition(
        op: dict[str, Any],
        condition: str | None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        if condition:
            op["ConditionExpression"] = condition
            # Lets a cancelled transaction tell us, e.g., which customer owns a duplicate.
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if names:
            op["ExpressionAttributeNames"] = dict(names)
        if values:
            op["ExpressionAttributeValues"] = {k: serialize_value(v) for k, v in values.items()}

    def commit(self, token: str | None = None) -> None:
        if not self.items:
            return
        kwargs: dict[str, Any] = {"TransactItems": self.items}
        if token:
            kwargs["ClientRequestToken"] = token
        try:
            aws.dynamodb().transact_write_items(**kwargs)
        except ClientError as exc:
            raise translate(exc) from exc


# --- reads ---------------------------------------------------------------------------


def get_item(key: Mapping[str, str], consistent: bool = False) -> dict[str, Any] | None:
    try:
        out = aws.dynamodb().get_item(TableName=table_name(), Key=serialize(key), ConsistentRead=consistent)
    except ClientError as exc:
        raise translate(exc) from exc
    item = out.get("Item")
    return deserialize(item) if item else None


def batch_get(keys: Sequence[Mapping[str, str]], consistent: bool = False) -> list[dict[str, Any]]:
    """BatchGetItem in chunks of 100, retrying unprocessed keys."""
    found: list[dict[str, Any]] = []
    unique = list({(k["PK"], k["SK"]): k for k in keys}.values())
    for start in range(0, len(unique), 100):
        request: dict[str, Any] = {
            table_name(): {
                "Keys": [serialize(k) for k in unique[start : start + 100]],
                "ConsistentRead": consistent,
            }
        }
        while request:
            try:
                out = aws.dynamodb().batch_get_item(RequestItems=request)
            except ClientError as exc:
                raise translate(exc) from exc
            found.extend(deserialize(i) for i in out.get("Responses", {}).get(table_name(), []))
            request = out.get("UnprocessedKeys") or {}
    return found


@dataclass
class QueryPage(Generic[T]):
    items: list[T]
    next_cursor: str | None

    def typed(self, _kind: type[R]) -> QueryPage[R]:
        """The same page, its items read as stored records of `_kind` (a TypedDict)."""
        return QueryPage(cast(list[R], self.items), self.next_cursor)


def query(
    key_condition: str,
    values: Mapping[str, Any],
    *,
    index: str | None = None,
    names: Mapping[str, str] | None = None,
    limit: int = 50,
    cursor: str | None = None,
    forward: bool = True,
    filter_expression: str | None = None,
    consistent: bool = False,
    partition: str | None = None,
) -> QueryPage[dict[str, Any]]:
    """One page of a Query with an opaque cursor.

    `partition` is the partition-key value the cursor must belong to, so a cursor made
    for one business or list cannot be replayed against another.
    """
    kwargs: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": {k: serialize_value(v) for k, v in values.items()},
        "Limit": limit,
        "ScanIndexForward": forward,
    }
    if index:
        kwargs["IndexName"] = index
    else:
        kwargs["ConsistentRead"] = consistent
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    if cursor:
        kwargs["ExclusiveStartKey"] = decode_cursor(cursor, partition)
    try:
        out = aws.dynamodb().query(**kwargs)
    except ClientError as exc:
        raise translate(exc) from exc
    last = out.get("LastEvaluatedKey")
    next_cursor = encode_cursor(last, partition) if last else None
    return QueryPage([deserialize(i) for i in out.get("Items", [])], next_cursor)


def query_prefix(
    pk: str, sk_prefix: str, limit: int, cursor: str | None, *, forward: bool = True
) -> QueryPage[dict[str, Any]]:
    """One page of the items of partition `pk` whose sort key starts with `sk_prefix`.

    The cursor is bound to `pk`, so it cannot be replayed against another partition.
    """
    return query(
        "PK = :pk AND begins_with(SK, :prefix)",
        {":pk": pk, ":prefix": sk_prefix},
        limit=limit,
        cursor=cursor,
        forward=forward,
        partition=pk,
    )


def query_all(key_condition: str, values: Mapping[str, Any], **kwargs: Any) -> Iterable[dict[str, Any]]:
    """Every item of a query, a page (`limit`, default 500) at a time."""
    cursor: str | None = None
    limit = kwargs.pop("limit", 500)
    while True:
        page = query(key_condition, values, cursor=cursor, limit=limit, **kwargs)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _cursor_cipher() -> Any:
    # Deferred: only paged requests pay for the cipher (cryptography's AES-GCM).
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(derive_key(settings().suppression_key, "cursor"))


def encode_cursor(last_key: Mapping[str, Any], partition: str | None = None) -> str:
    """An opaque cursor: the page's last key encrypted and authenticated (AES-GCM), bound to
    the list it came from. A client sees no key, so no name or e-mail travels in a URL."""
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    nonce = os.urandom(12)
    sealed = _cursor_cipher().encrypt(nonce, raw, (partition or "").encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decode_cursor(cursor: str, partition: str | None = None) -> dict[str, Any]:
    """The key a cursor names; any cursor this service did not make for this list is a 400."""
    from cryptography.exceptions import InvalidTag

    refused = BadRequest("cursor is not valid; use next_cursor from a previous page", {"field": "cursor"})
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        blob = base64.urlsafe_b64decode(padded.encode())
        raw = _cursor_cipher().decrypt(blob[:12], blob[12:], (partition or "").encode())
        key = json.loads(raw)
    except (ValueError, binascii.Error, InvalidTag) as exc:
        raise refused from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise refused
    return key
