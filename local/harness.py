"""Run functions in-process on moto: shared by the tests, the benchmarks and fault injection.

`fake_aws_environment()` must run before boto3 or Powertools are imported.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local import template as tpl
from local.events import http_api_event
from local.resources import function_environment, provision
from local.runtime import RouteTable, invoke

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # moto does not serve the account-based Streams endpoint (docs/design.md#known-traps-moto).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "loyalty-test",
    "POWERTOOLS_METRICS_NAMESPACE": "LoyaltyTest",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # Tracer turns itself off outside Lambda already; said here so no test depends on that guess.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def fake_aws_environment() -> None:
    os.environ.update(FAKE_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)


def reset_caches() -> None:
    """Clients and settings are cached per process; a new mock needs new ones."""
    from loyalty.adapters import aws
    from loyalty.api import idempotency
    from loyalty.config import settings

    settings.cache_clear()
    aws.reset()
    idempotency.reset()


@dataclass
class Aws:
    refs: dict[str, Any]
    routes: RouteTable
    specs: dict[str, tpl.FunctionSpec]

    @property
    def table_name(self) -> str:
        return str(self.refs["LoyaltyTable"])


def align_moto_limits() -> None:
    """moto 5.2 still caps TransactWriteItems at 25 items; DynamoDB has allowed 100 since 2022."""
    from moto.dynamodb import responses

    from loyalty.repository.base import MAX_TRANSACTION_ITEMS

    responses.TRANSACTION_MAX_ITEMS = MAX_TRANSACTION_ITEMS
    _serialize_moto_writes()


_moto_write_lock = threading.RLock()


def moto_lock() -> threading.RLock:
    """The lock moto's DynamoDB writes (and, on the local stack, all its requests) hold."""
    return _moto_write_lock


def _serialize_moto_writes() -> None:
    """Make moto's table writes atomic with respect to each other, as DynamoDB's are.

    moto's TransactWriteItems snapshots the whole table and restores the snapshot when a
    condition fails; two threads interleaving there undo each other's committed writes.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_serialized", False):
            continue

        def serialized(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _moto_write_lock:
                return __original(self, *args, **kwargs)

        serialized._serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


def serialize_moto_requests() -> None:
    """One DynamoDB request at a time in moto's server, reads included (the local stack).

    moto's query and scan iterate the table's dicts while another server thread's write
    adds to them ("dictionary changed size during iteration", a 500 to the caller), and it
    builds responses from items that a concurrent update changes in place. DynamoDB gives
    each request a consistent view; one lock around each request's handling does the same.
    moto's work is pure Python under the GIL, so the lock costs no parallelism.
    """
    from moto.dynamodb.responses import DynamoHandler

    _serialize_moto_writes()
    original = DynamoHandler.call_action
    if getattr(original, "_serialized", False):
        return

    def serialized(self: Any) -> Any:
        with _moto_write_lock:
            return original(self)

    serialized._serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialized  # type: ignore[method-assign]


_query_scope = threading.local()


def fast_moto_queries() -> None:
    """A Query reads the partition it names, not a sorted list of the whole table.

    moto 5.2's Table.query starts from `all_items()`, which lists every item of the table
    and sorts them all (DynamoType comparisons in Python), then keeps the queried partition
    or the index's matches and sorts those again. Every query cost O(n log n) in the size of
    the table: on a table of 50,000 items, a webhook dispatch's one-partition Query took
    most of a second, and an import slowed down as the table grew. Here, inside a Query,
    `all_items()` is that partition (base table) or the items unsorted (index: the query
    sorts its matches by the index's keys itself). Scans keep moto's sorted order, which
    their pages rely on. What DynamoDB answers is unchanged.
    """
    import inspect

    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_fast", False):
        return
    original_query, original_all_items = Table.query, Table.all_items
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> list[Any]:
        scope = getattr(_query_scope, "value", None)
        if scope is None or scope[0] is not self:
            return original_all_items(self)
        hash_key = scope[1]
        if hash_key is None:  # an index query: every item, in no particular order
            partitions = list(self.items.values())
        else:
            partitions = [self.items[hash_key]] if hash_key in self.items else []
        if not self.range_key_attr:
            return partitions
        return [item for partition in partitions for item in partition.values()]

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        index_name, hash_key = bound.arguments.get("index_name"), bound.arguments.get("hash_key")
        if not index_name and hash_key is None:
            return original_query(self, *args, **kwargs)
        saved = getattr(_query_scope, "value", None)
        _query_scope.value = (self, None if index_name else hash_key)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _query_scope.value = saved

    query._fast = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


# Answers that carry items, whose shape is DynamoDB JSON all the way down.
_ITEM_ANSWERS = frozenset(
    ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "PutItem", "UpdateItem", "DeleteItem")
)


def fast_moto_item_answers() -> None:
    """Answers carrying items written with one json.dumps, not moto's generic serializer.

    moto 5.2 builds every DynamoDB answer by walking botocore's output shape value by
    value in Python. Items are already DynamoDB JSON, so for the operations that return
    items the walk only costs: reading an import report with its 1,000 stored errors took
    that walk through 3,000 attribute values on every progress poll, and polls took 40% of
    the stack's CPU during a 100,000-row import. Binary values are base64, as the walk
    writes them; errors and every other operation keep moto's serializer.
    """
    import base64
    import datetime
    import json

    from moto.core.utils import unix_time
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult.execute_result, "_fast", False):
        return
    original = DynamoResult.execute_result

    def encode(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, datetime.datetime):
            return unix_time(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        if operation.name not in _ITEM_ANSWERS or not isinstance(self.result, dict):
            return original(self, context)
        version = operation.service_model.metadata.get("jsonVersion", "1.0")
        body = json.dumps({k: v for k, v in self.result.items() if v is not None}, default=encode)
        status = operation.http.get("responseCode", 200)
        return status, {"Content-Type": f"application/x-amz-json-{version}"}, body

    execute_result._fast = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


_fast_transactions = False


def fast_moto_transactions() -> None:
    """Opt-in (benchmarks): roll back a failed transaction item by item, not by table copy.

    moto deep-copies the whole table before every TransactWriteItems so it can restore it
    on failure; packing 10,000 cards then costs minutes of copying. This snapshots only
    the items the transaction names (and the stream's length) and restores those; moto's
    own copy of a Table becomes a no-op. What DynamoDB does is unchanged.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    global _fast_transactions
    if _fast_transactions:
        return
    _fast_transactions = True
    original = DynamoDBBackend.transact_write_items

    class _CopyTablesByReference:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched: list[tuple[Any, Any, Any, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        try:
            for op in transact_items:
                body = next(iter(op.values()))
                table = self.get_table(body["TableName"])
                key = body.get("Key") or body["Item"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                touched.append(
                    (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
                )
                if table.stream_shard is not None:
                    streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        except Exception:  # anything unusual: let moto take its own full copy
            return original(self, transact_items)
        models.copy = _CopyTablesByReference  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(touched):
                if range_key is None:
                    if item is None:
                        table.items.pop(hash_key, None)
                    else:
                        table.items[hash_key] = item
                elif item is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            models.copy = copy

    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    _serialize_moto_writes()


def provision_stack(prefix: str) -> Aws:
    """Provision the template's resources on the moto in reach and set the functions' environment."""
    template = tpl.load()
    refs = provision(template, prefix=prefix)
    for key, value in function_environment(template, refs).items():
        if not key.startswith("POWERTOOLS_"):
            os.environ[key] = value
    reset_caches()
    specs = tpl.functions(template, refs)
    return Aws(refs=refs, routes=RouteTable(specs), specs={s.logical_id: s for s in specs})


@contextmanager
def _provisioned(prefix: str, **environment: str) -> Iterator[Aws]:
    """The stack provisioned under `environment`; the environment as it was afterwards."""
    saved = dict(os.environ)
    os.environ.update(environment)
    reset_caches()  # no client made before may reach past this stack
    try:
        yield provision_stack(prefix)
    finally:
        reset_caches()
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def mocked_aws(prefix: str = "test") -> Iterator[Aws]:
    """moto with every template resource provisioned and the functions' environment set."""
    from moto import mock_aws

    align_moto_limits()
    with mock_aws(), _provisioned(prefix) as aws:
        yield aws


@contextmanager
def served_aws(endpoint: str, prefix: str = "test") -> Iterator[Aws]:
    """Like mocked_aws, on a moto server at `endpoint` (AWS_ENDPOINT_URL for every client)."""
    with _provisioned(prefix, AWS_ENDPOINT_URL=endpoint) as aws:
        yield aws


def claims(
    role: str = "staff", business: str = "biz-1", sub: str | None = None, **extra: Any
) -> dict[str, Any]:
    """What API Gateway's JWT authorizer puts in the event; `extra` adds claims such as
    `email` and `email_verified` from the identity provider."""
    return {"sub": sub or f"{role}-user", "business_id": business, "role": role, **extra}


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]

    def __repr__(self) -> str:  # readable assertion failures
        return f"ApiResponse({self.status}, {json.dumps(self.body)[:600]})"


class Api:
    """Calls a route through the template's routing and the real `lambda_handler`."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        role: str | None = "staff",
        business: str = "biz-1",
        sub: str | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw_body: str | None = None,
        claims_extra: dict[str, Any] | None = None,
    ) -> ApiResponse:
        matched = self.aws.routes.match(method, path)
        assert matched and not isinstance(matched, str), f"no route for {method} {path}"
        spec, route, params = matched
        event = http_api_event(
            method,
            path,
            route_path=route.path,
            path_parameters=params,
            body=body,
            raw_body=raw_body,
            query={k: str(v) for k, v in (query or {}).items() if v is not None},
            headers=headers,
            claims=claims(role, business, sub, **(claims_extra or {})) if role and route.authorizer else None,
        )
        result = invoke(spec, event)
        raw = result.get("body") or ""
        return ApiResponse(
            result["statusCode"],
            json.loads(raw) if raw and raw.strip()[:1] in "{[" else raw,
            result.get("headers") or {},
        )

    def ok(
        self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201), **kw: Any
    ) -> Any:
        response = self(method, path, body, **kw)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status in expected, response
        return response.body


def table_items(aws: Aws) -> list[dict[str, Any]]:
    """Every item in the table, deserialised (for 'nothing else changed' assertions)."""
    import boto3

    from loyalty.repository.base import deserialize

    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": aws.table_name}
    while True:
        out = client.scan(**kwargs)
        items.extend(deserialize(i) for i in out["Items"])
        if "LastEvaluatedKey" not in out:
            return items
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
