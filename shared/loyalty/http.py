"""The HTTP adapter shared by the API handlers: resolver, auth dependency, error mapping.

Domain errors become HTTP responses here and nowhere else. The error body is always
`{"error": {"code", "message", "details"}}` (DESIGN.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request

from loyalty import errors
from loyalty.auth import Principal, principal_from_claims
from loyalty.observability import logger

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.ValidationFailed: 422,
    errors.Throttled: 429,
    errors.Unavailable: 503,
}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "customers", 3, "email") -> "customers[3].email"; drop the location kind.
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    name = ""
    for part in parts:
        if part == "[key]":  # pydantic's marker for "the key of a dict entry": the key is already named
            continue
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or (str(loc[0]) if loc else "body")


def validation_fields(errs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "field": _field_name(e.get("loc", ())),
            "message": str(e.get("msg", "invalid")),
            "type": e.get("type"),
        }
        for e in errs
    ]


def _handle_validation(exc: RequestValidationError) -> Response:
    errs = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errs):
        return error_response(400, "malformed_json", "request body is not valid JSON", {})
    fields = validation_fields(errs)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_response(422, "validation_error", summary or "invalid request", {"fields": fields})


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        status = _status_for(exc)
        if status >= 500:
            logger.exception("domain error")
        return error_response(status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response:
        return _handle_validation(exc)

    @app.exception_handler(RequestUnsupportedContentType)
    def _media_type(exc: RequestUnsupportedContentType) -> Response:
        # A body sent as text/plain (or any type but JSON) is the client's mistake, not a 500.
        return error_response(415, "unsupported_media_type", "send the body as application/json")

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        return error_response(404, "not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; the request was not applied")


def jwt_claims(raw_event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Claims API Gateway's JWT authorizer placed in the event (None when there are none)."""
    authorizer = (raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def principal(request: Request) -> Principal:
    """Dependency: the verified caller. API Gateway's JWT authorizer put the claims there."""
    return principal_from_claims(jwt_claims(request.resolved_event.raw_event))


CurrentPrincipal = Annotated[Principal, Depends(principal)]

# Parameter types shared by the handlers, so every route bounds them the same way.
CustomerId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@lru_cache(maxsize=64)
def _idempotent_runner(business_id: str) -> Callable[..., dict[str, Any]]:
    # Built on first use: the persistence layer creates a boto3 client we do not want at import.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from loyalty import keys
    from loyalty.config import settings

    store = DynamoDBPersistenceLayer(
        table_name=settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        # One partition per business: stored answers hold personal data, and an exclusion
        # must be able to find and purge them (repository.idempotency).
        static_pk_value=keys.idempotency_pk(f"http#{business_id}"),
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
    # Imported here: the idempotency package pulls in boto3, which only keyed requests need.
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    try:
        runner = _idempotent_runner(request["business_id"])
        stored = runner(request=request, call=lambda: next_middleware(app))
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
    )


class LoyaltyResolver(APIGatewayHttpResolver):
    """The HTTP API resolver with validation, plus an auth gate that runs before validation.

    Powertools validates the body before resolving dependencies, so without this gate a
    caller with no token would learn the request schema from a 422 instead of getting 401.
    """

    def __init__(self, public_routes: frozenset[str] = frozenset()) -> None:
        super().__init__(enable_validation=True)
        # Route keys as API Gateway writes them ("POST /v1/invitations/{token}/accept").
        self.public_routes = public_routes

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        route_key = str(event.get("routeKey", ""))
        if route_key not in self.public_routes and jwt_claims(event) is None:
            denied = error_response(401, errors.Unauthorized.code, "missing or invalid bearer token")
            return {
                "statusCode": 401,
                "headers": {"Content-Type": "application/json"},
                "body": denied.body,
                "isBase64Encoded": False,
            }
        refused = _unreadable_body(event)
        if refused is not None:
            return {
                "statusCode": refused.status_code,
                "headers": {"Content-Type": "application/json"},
                "body": refused.body,
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def _unreadable_body(event: Mapping[str, Any]) -> Response | None:
    """A body the JSON API cannot read (Powertools would raise, i.e. answer 500); found by fuzzing."""
    body = event.get("body")
    if not body:
        return None
    content_type = str((event.get("headers") or {}).get("content-type") or "").lower()
    if content_type and "json" not in content_type:
        # e.g. multipart/form-data without a boundary, or text/plain
        return error_response(415, "unsupported_media_type", "send the body as application/json")
    if event.get("isBase64Encoded"):
        try:
            base64.b64decode(str(body)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return error_response(400, "malformed_json", "request body is not UTF-8 JSON")
    return None


def create_app(public_routes: frozenset[str] = frozenset()) -> APIGatewayHttpResolver:
    """The resolver every API handler uses. `public_routes` need no JWT (e.g. invitation links)."""
    app = LoyaltyResolver(public_routes)
    register_error_handlers(app)
    app.use(middlewares=[idempotency_middleware])
    return app
