"""Domain errors to HTTP responses, in one place. The body is always
`{"error": {"code", "message", "details"}}` (docs/design.md#http-api), except on the
resolver's page routes (invitation links), where a browser gets the same status as a page."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from loyalty.api import pages
from loyalty.domain import errors
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
    def as_page() -> bool:
        event = app.current_event
        route_key = str(event.raw_event.get("routeKey", ""))
        return route_key in getattr(app, "page_routes", frozenset()) and pages.wants_html(event)

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        status = _status_for(exc)
        if status >= 500:
            logger.exception("domain error")
        if as_page():
            return pages.error_page(status, exc.message, exc.details)
        return error_response(status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response:
        if as_page():
            return pages.error_page(422, "this link is not a valid invitation link")
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
        if as_page():
            return pages.error_page(500, "internal error")
        return error_response(500, "internal_error", "internal error; the request was not applied")
