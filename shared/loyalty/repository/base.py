"""Low-level DynamoDB plumbing: (de)serialisation, transactions, queries, cursors, errors.

The low-level client (loyalty.adapters.aws, not the resource API) keeps cold starts short;
items cross this boundary as plain Python dicts (boto3's TypeSerializer/TypeDeserializer
convert them; imported with the module, so the function's init pays for it, not a request).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Generic, TypeVar, cast

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from loyalty.adapters import aws
from loyalty.config import settings
from loyalty.domain.errors import BadRequest, Conflict, Throttled, Unavailable, ValidationFailed
from loyalty.domain.keyed import derive_key
from loyalty.domain.webhooks.events import StreamChange

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
MAX_TRANSACTION_ITEMS = 100
T = TypeVar("T")
R = TypeVar("R")


def table_name() -> str:
    return settings().table_name


def _storable(value: int | float) -> Decimal:
    """The number as DynamoDB stores it; refused (422) when DynamoDB could not store it exactly."""
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
    return {k: _SERIALIZER.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> dict[str, Any]:
    return _SERIALIZER.serialize(_to_dynamo(value))


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


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


# --- several partitions read as one (sharded indexes, docs/design.md#sharded-indexes) ----

_pool: ThreadPoolExecutor | None = None


def parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent requests at once (boto3 clients are thread-safe); results in call order."""
    global _pool
    if len(calls) <= 1:
        return [call() for call in calls]
    aws.dynamodb()  # made here, once: creating clients is not thread-safe
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=aws.MAX_PARALLEL_REQUESTS, thread_name_prefix="ddb")
    return list(_pool.map(lambda call: call(), calls))


def _query_raw(kwargs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    try:
        out = aws.dynamodb().query(**kwargs)
    except ClientError as exc:
        raise translate(exc) from exc
    return [deserialize(i) for i in out.get("Items", [])], out.get("LastEvaluatedKey")


@dataclass
class _Shard:
    pk: str
    start: dict[str, Any] | None = None  # ExclusiveStartKey: the last item read
    frontier: str = ""  # every item up to this sort key has been read
    done: bool = False  # every item has been read


def merged_query(
    pks: Sequence[str],
    *,
    index: str,
    limit: int,
    cursor: str | None,
    list_id: str,
    below: str | None = None,
) -> QueryPage[dict[str, Any]]:
    """One page of several partitions (the shards of one list) merged in sort-key order.

    Sort keys are unique across the shards (they end with the customer id), so the position
    in the whole list is the sort key of the last item returned: the cursor seals that one
    value, each shard continues after it, and no item repeats or goes missing between pages.
    `below` bounds the list (a work list of what is due).

    An item can be returned once every shard has been read up to it. Each shard is first
    asked for its share of the page; then the shards that stopped short are read, in
    parallel, up to a point among where the others stopped (`sort key <= c`: a shard read
    that far says so without reading past it), until the page is known. A page of 50 from
    16 shards then reads about 1.3 items per item returned, in about two rounds.
    """
    pk_attr, sk_attr = f"{index}PK", f"{index}SK"  # every index's keys are named after it
    after = decode_cursor(cursor, list_id)["after"]["S"] if cursor else None
    shards = [_Shard(pk) for pk in pks]
    found: list[dict[str, Any]] = []
    names = {"#pk": pk_attr, "#sk": sk_attr}  # DynamoDB refuses a name the expression leaves unused

    def read(shard: _Shard, count: int, upto: str | None = None) -> list[dict[str, Any]]:
        condition, values = "#pk = :pk", {":pk": {"S": shard.pk}}
        if upto is not None:
            condition, values[":c"] = condition + " AND #sk <= :c", {"S": upto}
        elif below is not None:
            condition, values[":b"] = condition + " AND #sk < :b", {"S": below}
        elif shard.start is None and after is not None:
            condition, values[":a"] = condition + " AND #sk > :a", {"S": after}
        kwargs: dict[str, Any] = {
            "TableName": table_name(),
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names if " AND " in condition else {"#pk": pk_attr},
            "ExpressionAttributeValues": values,
            "Limit": count,
        }
        if shard.start is not None:
            kwargs["ExclusiveStartKey"] = shard.start
        items, last = _query_raw(kwargs)
        if items:
            final = items[-1]
            shard.start = {k: {"S": final[k]} for k in ("PK", "SK", pk_attr, sk_attr)}
        if last is not None:
            shard.frontier = items[-1][sk_attr]
        elif upto is not None:
            shard.frontier = upto
        else:
            shard.done = True
        return items

    def gather(calls: list[Callable[[], list[dict[str, Any]]]]) -> None:
        for items in parallel(calls):
            found.extend(items)

    gather([partial(read, s, max(1, limit // len(pks))) for s in shards])
    while True:
        live = [s for s in shards if not s.done]
        frontier = min((s.frontier for s in live), default=None)
        known = sorted(
            (i for i in found if frontier is None or i[sk_attr] <= frontier), key=lambda i: str(i[sk_attr])
        )
        if len(known) >= limit or frontier is None:
            break
        ahead = sorted(s.frontier for s in live if s.frontier > frontier)
        if ahead:
            # Two thirds through where the shards stopped: a guess at where the page ends
            # (further reads one round less often than it over-reads; tuned on simulated pages).
            upto = ahead[len(ahead) * 2 // 3]
            gather([partial(read, s, limit, upto) for s in live if s.frontier < upto])
        else:  # every shard stopped at the same place: read on, each its share of what is missing
            share = max(1, -(-(limit - len(known)) // len(live)))
            gather([partial(read, s, share) for s in live])
    page = known[:limit]
    more = len(known) > limit or (len(page) == limit and any(not s.done for s in shards))
    next_cursor = encode_cursor({"after": {"S": page[-1][sk_attr]}}, list_id) if more else None
    return QueryPage(page, next_cursor)


def walk_shards(
    pks: Sequence[str],
    key_condition: str,
    values: Mapping[str, Any],
    *,
    index: str,
    limit: int,
    cursor: str | None,
    list_id: str,
) -> QueryPage[dict[str, Any]]:
    """A work list over several partitions, one shard after another (no order across them).

    Every item read is returned: the cursor holds the shard and its position in it.
    `key_condition` names the partition `:pk`.
    """
    shard, start = 0, None
    if cursor:
        position = decode_cursor(cursor, list_id)
        shard, start = int(position["shard"]["N"]), position.get("key")
        if not 0 <= shard < len(pks):
            raise BadRequest("cursor is not valid; use next_cursor from a previous page", {"field": "cursor"})
    found: list[dict[str, Any]] = []
    while shard < len(pks) and len(found) < limit:
        kwargs: dict[str, Any] = {
            "TableName": table_name(),
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": {
                k: serialize_value(v) for k, v in {**values, ":pk": pks[shard]}.items()
            },
            "Limit": limit - len(found),
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        items, start = _query_raw(kwargs)
        found.extend(items)
        if start is None:
            shard += 1
    if shard >= len(pks):
        return QueryPage(found, None)
    position = {"shard": {"N": str(shard)}, **({"key": start} if start else {})}
    return QueryPage(found, encode_cursor(position, list_id))


def _cursor_cipher() -> AESGCM:
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
