"""Who acts: the verified caller (a Principal) and the non-human actors, with the role sets
each use case requires. Built from JWT claims by loyalty.api.auth; no I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from loyalty.domain.errors import Forbidden, NotFound
from loyalty.domain.lifecycle import Actor
from loyalty.domain.records import ActorRecord


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
    # Identifiers the identity provider verified the caller owns ({"email": ..., "phone": ...}):
    # the proof a customer needs to claim an existing profile (docs/design.md#trust-and-identity).
    verified: Mapping[str, str] = field(default_factory=dict)

    def owns(self, kind: str, value: str | None) -> bool:
        """Whether the caller proved they own this identifier (staff never need to)."""
        return value is not None and self.verified.get(kind) == value

    @property
    def actor(self) -> Actor:
        return Actor(self.role.value)

    def as_actor_record(self) -> ActorRecord:
        return actor_record(self.sub, self.actor)

    def as_system(self) -> ActorRecord:
        """A system consequence of this caller's request (a card merge): record both."""
        return actor_record(self.sub, Actor.SYSTEM)

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


def actor_record(sub: str, actor: Actor) -> ActorRecord:
    """How an actor is stored on audit events and `last_change` (and read by webhooks)."""
    return {"sub": sub, "role": actor.value}


# The non-human actors, one record each: changes they make name them in the history.
RULES_ACTOR = actor_record("rules", Actor.SYSTEM)  # rule re-evaluation, expiry, definition removal
MAILER_ACTOR = actor_record("invitation-mailer", Actor.SYSTEM)  # undoing a claim the mail refused
SCHEDULER_ACTOR = actor_record("invitation-run", Actor.SCHEDULER)
INVITEE_ACTOR = actor_record("invitation-token", Actor.INVITEE)
TIERS_ACTOR = actor_record("tier-check", Actor.SCHEDULER)  # retention checks and re-evaluation jobs
