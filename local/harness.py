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
