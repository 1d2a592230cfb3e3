"""`Idempotency-Key` on mutating requests: a retry with the same key and body returns the first
answer and changes nothing (Powertools idempotency, records kept per business, spread over
shards by the request's key)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from loyalty.adapters import aws
from loyalty.api.auth import jwt_claims
from loyalty.api.errors import error_response
from loyalty.config import settings
from loyalty.repository import keys

REPLAYED_HEADER = "Idempotency-Replayed"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@lru_cache(maxsize=256)
def _idempotent_runner(partition: str) -> Callable[..., dict[str, Any]]:
    store = DynamoDBPersistenceLayer(
        table_name=settings().table_name,
        boto3_client=aws.dynamodb(),
        key_attr="PK",
        sort_key_attr="SK",
        # The business's partitions only: stored answers hold personal data, and an exclusion
        # must be able to find and purge them (repository.idempotency).
        static_pk_value=partition,
        expiry_attr="ttl",
    )
    config = IdempotencyConfig(
        event_key_jmespath="[business_id, sub, method, path, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=24 * 3600,
    )

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=store)
    def run(request: dict[str, Any], call: Callable[[], Response]) -> dict[str, Any]:
        response = call()
        if response.status_code >= 400:
            # Raising removes the in-progress record: a failed request may be retried for real.
            raise _NotStored(response)
        return {"status": response.status_code, "body": response.body, "content_type": response.content_type}

    return run


def reset() -> None:
    """Forget the stores (they hold a DynamoDB client): the endpoint or the mock changed."""
    _idempotent_runner.cache_clear()


class _NotStored(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("not stored")
        self.response = response


def idempotency_middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """`Idempotency-Key` on a mutating request: a retry returns the first answer, changes nothing."""
    event = app.current_event
    key = (event.headers or {}).get("idempotency-key")
    if not key or event.http_method not in _MUTATING:
        return next_middleware(app)
    if len(key) > 255:
        return error_response(422, "validation_error", "Idempotency-Key is longer than 255 characters")
    claims = jwt_claims(event.raw_event) or {}
    request = {
        "business_id": str(claims.get("business_id", "")),
        "sub": str(claims.get("sub", "")),
        "method": event.http_method,
        "path": event.path,
        "key": key,
        "body": event.body or "",
    }
    ran: list[bool] = []

    def call() -> Response:
        ran.append(True)
        return next_middleware(app)

    try:
        # The same request always lands in the same shard, where its replay looks.
        shard_key = "|".join((request["sub"], request["method"], request["path"], key))
        runner = _idempotent_runner(keys.idempotency_pk(request["business_id"], shard_key))
        stored = runner(request=request, call=call)
    except _NotStored as failed:
        return failed.response
    except IdempotencyValidationError:
        return error_response(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            {"fields": [{"field": "Idempotency-Key", "message": "reused with a different body"}]},
        )
    except IdempotencyAlreadyInProgressError:
        return error_response(409, "in_progress", "a request with this Idempotency-Key is still running")
    return Response(
        status_code=int(stored["status"]),
        content_type=stored.get("content_type") or "application/json",
        body=stored["body"],
        # A replayed answer says so: the client sees it is the first answer, not a new one.
        headers=None if ran else {REPLAYED_HEADER: "true"},
    )
