"""The program-status lifecycle (docs/design.md#program-status-lifecycle), as data the code reads.

One transition table, one eligibility table, one enum of audit event kinds. No I/O here:
unit tests cover every row. "Program status" is the lifecycle; the business's ranked
labels (VIP, Staff...) are "ranked statuses" (loyalty.domain.ranked_statuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from loyalty.domain.errors import Forbidden, IllegalTransition


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


class LifecycleEvent(StrEnum):
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


class AuditKind(StrEnum):
    """Every kind of audit event a customer's history holds: the lifecycle events, then the
    changes that keep the program status (edits, cards, ranked statuses, invitation mail)."""

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
    UPDATE = "update"
    CARD_BLOCKED = "card_blocked"
    CARD_UNBLOCKED = "card_unblocked"
    CARD_ATTACHED = "card_attached"
    CARD_REPLACED = "card_replaced"
    STATUS_ASSIGNED = "status_assigned"
    STATUS_REMOVED = "status_removed"
    STATUS_EXPIRED = "status_expired"
    STATUSES_EVALUATED = "statuses_evaluated"
    STATUSES_RERANKED = "statuses_reranked"
    INVITE_NOT_SENT = "invite_not_sent"
    REMINDERS_STOPPED = "reminders_stopped"
    TIER_CHANGED = "tier_changed"


def audit_kind(event: LifecycleEvent) -> AuditKind:
    return AuditKind(event.value)


S = ProgramStatus
A = Actor


@dataclass(frozen=True)
class Transition:
    event: LifecycleEvent
    sources: frozenset[ProgramStatus | None]  # None: the customer does not exist yet
    target: ProgramStatus
    actors: frozenset[Actor]


def _t(
    event: LifecycleEvent, sources: set[ProgramStatus | None], target: ProgramStatus, actors: set[Actor]
) -> Transition:
    return Transition(event, frozenset(sources), target, frozenset(actors))


TRANSITIONS: tuple[Transition, ...] = (
    _t(LifecycleEvent.IMPORT, {None}, S.IMPORTED, {A.ADMIN, A.SERVICE, A.STAFF}),
    _t(LifecycleEvent.INVITE, {S.IMPORTED}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    _t(LifecycleEvent.REMIND, {S.PENDING}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    _t(LifecycleEvent.REINVITE, {S.INACTIVE}, S.PENDING, {A.STAFF, A.ADMIN}),
    _t(LifecycleEvent.ACCEPT, {S.PENDING}, S.ACTIVE, {A.INVITEE}),
    _t(LifecycleEvent.DECLINE, {S.PENDING}, S.INACTIVE, {A.INVITEE}),
    _t(
        LifecycleEvent.REGISTER,
        {S.IMPORTED, S.PENDING, S.INACTIVE, S.ANONYMOUS, None},
        S.ACTIVE,
        {A.CUSTOMER, A.STAFF, A.ADMIN, A.SERVICE},
    ),
    _t(LifecycleEvent.ANONYMOUS_SIGNUP, {None}, S.ANONYMOUS, {A.CUSTOMER, A.SERVICE}),
    _t(LifecycleEvent.PACK_CARD, {None}, S.NEW, {A.ADMIN}),
    _t(LifecycleEvent.MERGE, {S.NEW}, S.MERGED, {A.SYSTEM}),
    _t(LifecycleEvent.DISCONNECT, {S.ACTIVE, S.PENDING}, S.INACTIVE, {A.STAFF, A.ADMIN, A.CUSTOMER}),
    _t(
        LifecycleEvent.EXCLUDE,
        {S.IMPORTED, S.PENDING, S.ACTIVE, S.INACTIVE, S.ANONYMOUS, S.NEW},
        S.EXCLUDED,
        {A.CUSTOMER, A.STAFF, A.ADMIN},
    ),
)

_BY_EVENT: dict[LifecycleEvent, Transition] = {t.event: t for t in TRANSITIONS}


def transitions_from(current: ProgramStatus | None) -> list[Transition]:
    return [t for t in TRANSITIONS if current in t.sources]


def describe_allowed(current: ProgramStatus | None) -> list[dict[str, str]]:
    """What can happen from `current`, for error messages and the API."""
    return [{"event": t.event.value, "to": t.target.value} for t in transitions_from(current)]


def apply(event: LifecycleEvent, current: ProgramStatus | None, actor: Actor) -> ProgramStatus:
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


def sources_of(event: LifecycleEvent) -> frozenset[ProgramStatus | None]:
    return _BY_EVENT[event].sources


def event_for_target(
    current: ProgramStatus,
    target: ProgramStatus,
    actor: Actor,
    excluded_events: frozenset[LifecycleEvent] = frozenset(),
) -> LifecycleEvent:
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
    """What a program status may do. The one place that decides it: cards, ranked statuses,
    search, edits, points and communications all ask this table."""

    earns: bool
    # True/False, or the name of the business setting that decides.
    redeems: bool | str
    communications: Communications
    takes_cards: bool  # may take a card (registration, attach, replacement)
    holds_statuses: bool  # may hold ranked statuses (assigned by staff, in bulk or by rules)
    listed: bool  # appears in the name search (has personal data worth finding)
    editable: bool  # profile fields may be edited (PATCH, imports)


#                                  earns  redeems                  communications   cards  ranked listed edit
ELIGIBILITY: dict[ProgramStatus, Eligibility] = {
    S.IMPORTED: Eligibility(False, False, Communications.INVITATION_ONLY, True, True, True, True),
    S.PENDING: Eligibility(False, False, Communications.REMINDERS_ONLY, True, True, True, True),
    S.ACTIVE: Eligibility(True, True, Communications.ALL, True, True, True, True),
    S.INACTIVE: Eligibility(False, False, Communications.NONE, True, True, True, True),
    S.ANONYMOUS: Eligibility(True, "anonymous_can_redeem", Communications.IN_APP, True, True, True, True),
    # A `new` virtual owner holds its packed card but takes no other; it has nothing to search for.
    S.NEW: Eligibility(True, "new_card_can_redeem", Communications.NONE, False, True, False, True),
    S.MERGED: Eligibility(False, False, Communications.NONE, False, False, False, False),
    S.EXCLUDED: Eligibility(False, False, Communications.NONE, False, False, False, False),
}


def eligibility(status: ProgramStatus | str) -> Eligibility:
    return ELIGIBILITY[ProgramStatus(status)]


def statuses_where(column: str) -> list[ProgramStatus]:
    """Program statuses whose eligibility `column` is true, in table order (for index walks)."""
    return [s for s, e in ELIGIBILITY.items() if getattr(e, column) is True]


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
        # marketing_consent governs everything but the invitation itself (docs/design.md#ranked-statuses).
        return kind in ("invitation", "reminder") or marketing_consent
    if comms is Communications.IN_APP:
        return kind == "in_app"
    return False
