"""The verified caller, from the claims API Gateway's JWT authorizer put in the event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.request import Request

from loyalty.domain.errors import Unauthorized
from loyalty.domain.ids import is_safe_id
from loyalty.domain.normalize import normalize_email, normalize_phone
from loyalty.domain.principal import Principal, Role


def jwt_claims(raw_event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Claims API Gateway's JWT authorizer placed in the event (None when there are none)."""
    authorizer = (raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    """The caller, from claims the JWT authorizer verified; every claim that enters a key is
    checked here, at the boundary (a claim of another type is refused, never stringified)."""
    if not claims:
        raise Unauthorized("missing or invalid bearer token")
    sub, business_id, role = claims.get("sub"), claims.get("business_id"), claims.get("role")
    if not sub or not business_id or not role:
        raise Unauthorized("token lacks sub, business_id or role")
    for name, value in (("sub", sub), ("business_id", business_id)):
        if not is_safe_id(value):
            raise Unauthorized(
                f"the {name} claim must be 1 to 128 letters, digits or -_.|:@",
                {"claim": name},
            )
    if not isinstance(role, str) or role not in Role.__members__.values():
        raise Unauthorized("unknown role", {"claim": "role"})
    return Principal(
        sub=sub,
        business_id=business_id,
        role=Role(role),
        verified=verified_identifiers(claims),
    )


def verified_identifiers(claims: Mapping[str, Any]) -> dict[str, str]:
    """Identifiers the identity provider says the caller owns: `email` with `email_verified`,
    `phone_number` with `phone_number_verified` (OpenID Connect standard claims), in their
    canonical form. Anything else proves nothing."""
    proven: dict[str, str] = {}
    for kind, claim, flag, canonical in (
        ("email", "email", "email_verified", normalize_email),
        ("phone", "phone_number", "phone_number_verified", normalize_phone),
    ):
        value, verified = claims.get(claim), claims.get(flag)
        # Some providers send the flag as the string "true".
        if isinstance(value, str) and len(value) <= 254 and verified in (True, "true"):
            try:
                proven[kind] = canonical(value)
            except ValueError:
                continue
    return proven


def principal(request: Request) -> Principal:
    """Dependency: the verified caller."""
    return principal_from_claims(jwt_claims(request.resolved_event.raw_event))


CurrentPrincipal = Annotated[Principal, Depends(principal)]
