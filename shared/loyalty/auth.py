"""Who is calling: claims from the verified JWT (API Gateway puts them in the event)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from loyalty.errors import Forbidden, NotFound, Unauthorized
from loyalty.lifecycle import Actor


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    SERVICE = "service"
    CUSTOMER = "customer"


BACK_OFFICE = frozenset({Role.ADMIN, Role.STAFF, Role.SERVICE})
ADMINS = frozenset({Role.ADMIN, Role.SERVICE})
STAFF_AND_ADMIN = frozenset({Role.ADMIN, Role.STAFF})
ANY_ROLE = frozenset(Role)


@dataclass(frozen=True)
class Principal:
    sub: str
    business_id: str
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor(self.role.value)

    def as_actor_record(self) -> dict[str, str]:
        return {"sub": self.sub, "role": self.role.value}

    def require(self, roles: Iterable[Role]) -> Principal:
        allowed = frozenset(roles)
        if self.role not in allowed:
            raise Forbidden(
                f"role {self.role.value} may not do this",
                {"role": self.role.value, "allowed_roles": sorted(r.value for r in allowed)},
            )
        return self

    def require_self_or(self, customer_id: str, roles: Iterable[Role]) -> Principal:
        """Back-office roles in `roles`, or the customer acting on their own profile."""
        if self.role is Role.CUSTOMER:
            if self.sub != customer_id:
                # 404, not 403: a customer must not learn which ids exist.
                raise NotFound("customer not found", {"customer_id": customer_id})
            return self
        return self.require(roles)


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
