"""The Powertools resolver every API handler uses: validation, an auth gate, error mapping,
Idempotency-Key middleware."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from loyalty.adapters import aws
from loyalty.api.auth import jwt_claims, principal_from_claims
from loyalty.api.body import read_json
from loyalty.api.errors import error_response, register_error_handlers
from loyalty.api.idempotency import idempotency_middleware
from loyalty.api.params import known_query_parameters
from loyalty.domain import errors


class LoyaltyResolver(APIGatewayHttpResolver):
    """The HTTP API resolver with validation, plus an auth gate that runs before validation.

    Powertools validates the body before resolving dependencies, so without this gate a
    caller with no token would learn the request schema from a 422 instead of getting 401.
    """

    def __init__(
        self, public_routes: frozenset[str] = frozenset(), page_routes: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(enable_validation=True, json_body_deserializer=read_json)
        # Route keys as API Gateway writes them ("POST /v1/invitations/{token}/accept").
        self.public_routes = public_routes
        # Routes a browser opens (invitation links): errors become pages (loyalty.api.errors).
        self.page_routes = page_routes

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        route_key = str(event.get("routeKey", ""))
        refused = None if route_key in self.public_routes else _unauthorized(event)
        # A page's form posts form-encoded (and reads no body): only JSON routes check it.
        refused = refused or (None if route_key in self.page_routes else _unreadable_body(event))
        if refused is not None:
            return {
                "statusCode": refused.status_code,
                "headers": {"Content-Type": "application/json"},
                "body": refused.body,
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def _unauthorized(event: Mapping[str, Any]) -> Response | None:
    """401 before anything reads the claims (the idempotency store keys on them): missing, or
    holding a business or subject that could not safely enter a key."""
    try:
        principal_from_claims(jwt_claims(event))
    except errors.Unauthorized as refused:
        return error_response(401, refused.code, refused.message, refused.details)
    return None


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


def create_app(
    public_routes: frozenset[str] = frozenset(), page_routes: frozenset[str] = frozenset()
) -> APIGatewayHttpResolver:
    """The resolver every API handler uses. `public_routes` need no JWT (e.g. invitation links);
    `page_routes` answer browsers with HTML pages, errors included (loyalty.api.pages)."""
    app = LoyaltyResolver(public_routes, page_routes)
    register_error_handlers(app)
    # Every request reads the table: its client is made while the function initialises
    # (Lambda's init phase), not by the first request.
    aws.dynamodb()
    # Unknown parameters are refused before an Idempotency-Key could store the answer.
    app.use(middlewares=[known_query_parameters, idempotency_middleware])
    return app
