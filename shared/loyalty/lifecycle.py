"""The program-status lifecycle of DESIGN.md, as data the code reads.

One transition table, one eligibility table. No I/O here: unit tests cover every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from loyalty.errors import Forbidden, IllegalTransition


class ProgramStatus(StrEnum):
    IMPORTED = "imported"
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    ANONYMOUS = "anonymous"
    NEW = "new"
    MERGED = "merged"
    EXCLUDED = "excluded"


class Actor(StrEnum):
    """Who triggers an event. Token roles plus the non-human callers."""

    ADMIN = "admin"
    STAFF = "staff"
    SERVICE = "service"
    CUSTOMER = "customer"  # the customer themself (app token with sub == customer id)
    INVITEE = "invitee"  # holder of an invitation token
    SCHEDULER = "scheduler"
    SYSTEM = "system"


class Event(StrEnum):
    IMPORT = "import"
    INVITE = "invite"
    REMIND = "remind"
    REINVITE = "reinvite"
    ACCEPT = "accept"
    DECLINE = "decline"
    REGISTER = "register"
    ANONYMOUS_SIGNUP = "anonymous_signup"
    PACK_CARD = "pack_card"
    MERGE = "merge"
    DISCONNECT = "disconnect"
    EXCLUDE = "exclude"


S = ProgramStatus
A = Actor


@dataclass(frozen=True)
class Transition:
    event: Event
    sources: frozenset[ProgramStatus | None]  # None: the customer does not exist yet
    target: ProgramStatus
    actors: frozenset[Actor]


def _t(
    event: Event, sources: set[ProgramStatus | None], target: ProgramStatus, actors: set[Actor]
) -> Transition:
    return Transition(event, frozenset(sources), target, frozenset(actors))


TRANSITIONS: tuple[Transition, ...] = (
    _t(Event.IMPORT, {None}, S.IMPORTED, {A.ADMIN, A.SERVICE, A.STAFF}),
    _t(Event.INVITE, {S.IMPORTED}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    _t(Event.REMIND, {S.PENDING}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    _t(Event.REINVITE, {S.INACTIVE}, S.PENDING, {A.STAFF, A.ADMIN}),
    _t(Event.ACCEPT, {S.PENDING}, S.ACTIVE, {A.INVITEE}),
    _t(Event.DECLINE, {S.PENDING}, S.INACTIVE, {A.INVITEE}),
    _t(
        Event.REGISTER,
        {S.IMPORTED, S.PENDING, S.INACTIVE, S.ANONYMOUS, None},
        S.ACTIVE,
        {A.CUSTOMER, A.STAFF, A.ADMIN, A.SERVICE},
    ),
    _t(Event.ANONYMOUS_SIGNUP, {None}, S.ANONYMOUS, {A.CUSTOMER, A.SERVICE}),
    _t(Event.PACK_CARD, {None}, S.NEW, {A.ADMIN}),
    _t(Event.MERGE, {S.NEW}, S.MERGED, {A.SYSTEM}),
    _t(Event.DISCONNECT, {S.ACTIVE, S.PENDING}, S.INACTIVE, {A.STAFF, A.ADMIN, A.CUSTOMER}),
    _t(
        Event.EXCLUDE,
        {S.IMPORTED, S.PENDING, S.ACTIVE, S.INACTIVE, S.ANONYMOUS, S.NEW},
        S.EXCLUDED,
        {A.CUSTOMER, A.STAFF, A.ADMIN},
    ),
)

_BY_EVENT: dict[Event, Transition] = {t.event: t for t in TRANSITIONS}


def transitions_from(current: ProgramStatus | None) -> list[Transition]:
    return [t for t in TRANSITIONS if current in t.sources]


def describe_allowed(current: ProgramStatus | None) -> list[dict[str, str]]:
    """What can happen from `current`, for error messages and the API."""
    return [{"event": t.event.value, "to": t.target.value} for t in transitions_from(current)]


def apply(event: Event, current: ProgramStatus | None, actor: Actor) -> ProgramStatus:
    """Return the status `event` leads to, or raise naming the transitions that exist."""
    transition = _BY_EVENT[event]
    if current not in transition.sources:
        allowed = describe_allowed(current)
        shown = ", ".join(f"{a['event']} -> {a['to']}" for a in allowed) or "none"
        raise IllegalTransition(
            f"cannot {event.value} a customer whose program status is {current or 'none'}; "
            f"allowed from {current or 'none'}: {shown}",
            {"from": current.value if current else None, "event": event.value, "allowed": allowed},
        )
    if actor not in transition.actors:
        raise Forbidden(
            f"{actor.value} may not {event.value}",
            {"event": event.value, "allowed_actors": sorted(a.value for a in transition.actors)},
        )
    return transition.target


def sources_of(event: Event) -> frozenset[ProgramStatus | None]:
    return _BY_EVENT[event].sources


def event_for_target(
    current: ProgramStatus,
    target: ProgramStatus,
    actor: Actor,
    excluded_events: frozenset[Event] = frozenset(),
) -> Event:
    """Which event takes `current` to `target` for `actor` (a staff edit names only the target)."""
    candidates = [
        t for t in transitions_from(current) if t.target == target and t.event not in excluded_events
    ]
    permitted = [t for t in candidates if actor in t.actors]
    if permitted:
        return permitted[0].event
    if candidates:
        raise Forbidden(
            f"{actor.value} may not move a customer from {current.value} to {target.value}",
            {"from": current.value, "to": target.value},
        )
    allowed = describe_allowed(current)
    shown = ", ".join(f"{a['event']} -> {a['to']}" for a in allowed) or "none"
    raise IllegalTransition(
        f"no transition from {current.value} to {target.value}; allowed from {current.value}: {shown}",
        {"from": current.value, "to": target.value, "allowed": allowed},
    )


class Communications(StrEnum):
    INVITATION_ONLY = "invitation_only"
    REMINDERS_ONLY = "invitation_reminders_only"
    ALL = "all"
    NONE = "none"
    IN_APP = "in_app"


@dataclass(frozen=True)
class Eligibility:
    earns: bool
    # True/False, or the name of the business setting that decides.
    redeems: bool | str
    communications: Communications


ELIGIBILITY: dict[ProgramStatus, Eligibility] = {
    S.IMPORTED: Eligibility(False, False, Communications.INVITATION_ONLY),
    S.PENDING: Eligibility(False, False, Communications.REMINDERS_ONLY),
    S.ACTIVE: Eligibility(True, True, Communications.ALL),
    S.INACTIVE: Eligibility(False, False, Communications.NONE),
    S.ANONYMOUS: Eligibility(True, "anonymous_can_redeem", Communications.IN_APP),
    S.NEW: Eligibility(True, "new_card_can_redeem", Communications.NONE),
    S.MERGED: Eligibility(False, False, Communications.NONE),
    S.EXCLUDED: Eligibility(False, False, Communications.NONE),
}


def can_earn(status: ProgramStatus) -> bool:
    return ELIGIBILITY[status].earns


def can_redeem(status: ProgramStatus, business_settings: dict[str, bool] | None = None) -> bool:
    rule = ELIGIBILITY[status].redeems
    if isinstance(rule, str):
        return bool((business_settings or {}).get(rule, False))
    return rule


def may_receive(status: ProgramStatus, kind: str, marketing_consent: bool = False) -> bool:
    """Whether a communication of `kind` (invitation, reminder, marketing, in_app) may go out."""
    comms = ELIGIBILITY[status].communications
    if comms is Communications.INVITATION_ONLY:
        return kind == "invitation"
    if comms is Communications.REMINDERS_ONLY:
        return kind == "reminder"
    if comms is Communications.ALL:
        # marketing_consent governs everything but the invitation itself (DESIGN.md).
        return kind in ("invitation", "reminder") or marketing_consent
    if comms is Communications.IN_APP:
        return kind == "in_app"
    return False
