"""Path and query parameters: the types shared by the handlers, so every route bounds them the
same way, and the one check that refuses query parameters a route does not take."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from loyalty.api.errors import error_response
from loyalty.domain.cards import CARD_NUMBER_PATTERN
from loyalty.domain.ids import ID_PATTERN
from loyalty.domain.ranked_statuses import STATUS_CODE_PATTERN

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
# Ids this service makes (imports, webhooks, deliveries) are safe ids too.
ResourceId = Annotated[str, Path(pattern=ID_PATTERN)]
CardNumberParam = Annotated[str, Path(pattern=CARD_NUMBER_PATTERN)]
StatusCodeParam = Annotated[str, Path(pattern=STATUS_CODE_PATTERN)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def known_query_parameters(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """An unknown query parameter is a 422 naming it, on every route, never silently ignored
    (a misspelt filter must not answer an unfiltered list). A route's parameters are the
    `Query` ones its handler declares, read from the route Powertools matched. Public
    routes (links in e-mails) are left alone: mail clients append their own tracking
    parameters to links."""
    route = app.context.get("_route")
    event = app.current_event
    if route is None or event.raw_event.get("routeKey") in getattr(app, "public_routes", ()):
        return next_middleware(app)
    declared = {param.alias for param in route.dependant.query_params}
    unknown = sorted(set(event.query_string_parameters or {}) - declared)
    if not unknown:
        return next_middleware(app)
    fields = [{"field": name, "message": "unknown query parameter"} for name in unknown]
    expected = ", ".join(sorted(declared)) or "none"
    message = f"unknown query parameter {', '.join(unknown)} (this route takes: {expected})"
    return error_response(422, "validation_error", message, {"fields": fields})
