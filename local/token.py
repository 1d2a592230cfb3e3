"""Local JWTs (HS256), the stand-in for the HTTP API's JWT authorizer (docs/design.md#local-stack).

`python -m local.token --business demo --role admin [--sub X] [--ttl 3600]` prints one.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
import warnings
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

DEFAULT_SECRET = "local-dev-secret"
ROLES = ("admin", "staff", "service", "customer")
REQUIRED_CLAIMS = ("sub", "business_id", "role")


class TokenError(Exception):
    """The bearer token is missing, malformed, badly signed, expired or lacks a claim."""


def secret() -> str:
    return os.environ.get("LOYALTY_LOCAL_JWT_SECRET") or DEFAULT_SECRET


def make_token(
    business: str,
    role: str,
    sub: str | None = None,
    *,
    ttl: int | None = 3600,
    key: str | None = None,
    **extra: Any,
) -> str:
    """A signed token; `sub` defaults to a fresh id (for role customer it is the customer id)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or f"{role}-{uuid.uuid4().hex[:8]}",
        "business_id": business,
        "role": role,
        "iat": now,
        **extra,
    }
    if ttl:
        claims["exp"] = now + ttl
    with warnings.catch_warnings():
        # The design fixes a short default secret for local use; PyJWT warns about its length.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key or secret(), algorithm="HS256")


def verify(authorization: str | None, key: str | None = None) -> dict[str, Any]:
    """Claims of an `Authorization: Bearer <JWT>` header value; raises TokenError."""
    if not authorization:
        raise TokenError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("authorization header must be 'Bearer <JWT>'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                key or secret(),
                algorithms=["HS256"],
                # API Gateway's JWT authorizer refuses tokens without an expiry: so does this.
                options={"require": [*REQUIRED_CLAIMS, "exp"]},
            )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    return claims


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.token", description=__doc__)
    parser.add_argument("--business", required=True, help="business_id claim (the tenant)")
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--sub", default=None, help="subject; for role customer the customer id")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until exp; 0 for no exp")
    args = parser.parse_args(argv)
    print(make_token(args.business, args.role, args.sub, ttl=args.ttl))


if __name__ == "__main__":
    main()
