"""The verified caller, from the claims API Gateway's JWT authorizer put in the event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.request import Request

from loyalty.domain.errors import Unauthorized
from loyalty.domain.principal import Principal, Role


def jwt_claims(raw_event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Claims API Gateway's JWT authorizer placed in the event (None when there are none)."""
    authorizer = (raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    if not claims:
        raise Unauthorized("missing or invalid bearer token")
    sub, business_id, role = claims.get("sub"), claims.get("business_id"), claims.get("role")
    if not sub or not business_id or not role:
        raise Unauthorized("token lacks sub, business_id or role")
    try:
        parsed_role = Role(str(role))
    except ValueError as exc:
        raise Unauthorized(f"unknown role {role!r}") from exc
    return Principal(sub=str(sub), business_id=str(business_id), role=parsed_role)


def principal(request: Request) -> Principal:
    """Dependency: the verified caller."""
    return principal_from_claims(jwt_claims(request.resolved_event.raw_event))


CurrentPrincipal = Annotated[Principal, Depends(principal)]
