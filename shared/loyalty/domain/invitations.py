"""Invitation rules with no I/O (docs/design.md#invitations): when a customer is due, what one
e-mail changes, the cadence between e-mails, tokens.

The invitation-due index (GSI3) is derived from `index_due_at`, so every code path that
writes a profile (create, import, edit, status change) keeps the index right without
knowing about invitations.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from loyalty.domain.clock import iso
from loyalty.domain.errors import Conflict, Gone
from loyalty.domain.lifecycle import Actor, LifecycleEvent, ProgramStatus, apply, may_receive
from loyalty.domain.records import InvitationTokenRecord, ProfileRecord, updated

# A link stays usable for 30 days; DynamoDB's TTL removes the token item some time after.
TOKEN_LIFETIME = timedelta(days=30)


class TooSoon(Conflict):
    """409: the last invitation e-mail went out less than `reminder_after_days` ago."""

    code = "too_soon"


class Cadence(Protocol):
    """The settings the rules read (loyalty.schemas.invitations.InvitationSettings)."""

    reminder_after_days: int
    max_reminders: int


# Which e-mail a customer gets from each status, and the event that records it.
EVENT_BY_STATUS: dict[ProgramStatus, LifecycleEvent] = {
    ProgramStatus.IMPORTED: LifecycleEvent.INVITE,
    ProgramStatus.PENDING: LifecycleEvent.REMIND,
    ProgramStatus.INACTIVE: LifecycleEvent.REINVITE,
}
_DUE_STATUSES = {ProgramStatus.IMPORTED: "invitation", ProgramStatus.PENDING: "reminder"}


def index_due_at(profile: ProfileRecord) -> str | None:
    """When the scheduled run should e-mail this customer next, or None (not in the index).

    An imported customer with an e-mail is due from the moment it exists (its created_at),
    so customers created by the API or by imports enter the index with no extra step.
    """
    try:
        status = ProgramStatus(str(profile.get("program_status")))
    except ValueError:
        return None
    kind = _DUE_STATUSES.get(status)
    if kind is None or not profile.get("email"):
        return None
    if not may_receive(status, kind, bool(profile.get("marketing_consent"))):
        return None
    due = profile.get("invite_due_at")
    if due:
        return str(due)
    created = profile.get("created_at")
    return str(created) if status is ProgramStatus.IMPORTED and created else None


def next_due(at: datetime, settings: Cadence, reminders_sent: int) -> str | None:
    """The next reminder's due time, or None once max_reminders have gone out."""
    if reminders_sent >= settings.max_reminders:
        return None
    return iso(at + timedelta(days=settings.reminder_after_days))


# --- cadence: at most one invitation e-mail per customer per reminder_after_days -----------


def cadence_cutoff(at: datetime, settings: Cadence) -> str:
    """An e-mail may go out at `at` only if the last one went out at or before this time.

    The claim's write condition compares `last_invited_at` with it (ISO strings of one
    format sort as times), so the rule holds even against a profile read before a
    concurrent e-mail.
    """
    return iso(at - timedelta(days=settings.reminder_after_days))


def too_soon(
    last_invited_at: str | None, settings: Cadence, at: datetime, customer_id: str
) -> TooSoon | None:
    """Why an e-mail at `at` would break the cadence (naming the next allowed time), or None."""
    if not last_invited_at or last_invited_at <= cadence_cutoff(at, settings):
        return None
    next_allowed = datetime.fromisoformat(last_invited_at) + timedelta(days=settings.reminder_after_days)
    return TooSoon(
        f"the last invitation e-mail went out less than {settings.reminder_after_days} days ago; "
        "the next one may go out at next_allowed_at (an admin may override with a reason)",
        {
            "customer_id": customer_id,
            "last_invited_at": last_invited_at,
            "next_allowed_at": iso(next_allowed),
            "reminder_after_days": settings.reminder_after_days,
        },
    )


@dataclass(frozen=True)
class SendPlan:
    event: LifecycleEvent
    kind: str  # "invitation" or "reminder": the e-mail's wording
    target: ProgramStatus
    updates: dict[str, Any]
    # The claim holds only if the last e-mail went out at or before this time; None: overridden.
    cadence_cutoff: str | None = None


def plan_send(
    profile: ProfileRecord,
    settings: Cadence,
    at: datetime,
    actor: Actor,
    override_cadence: bool = False,
) -> SendPlan:
    """What sending one invitation e-mail to `profile` changes; raises if it may not be sent.

    `override_cadence` (an admin's explicit choice, audited by the caller) lets an e-mail
    go out within `reminder_after_days` of the last one.
    """
    current = ProgramStatus(profile["program_status"])
    event = EVENT_BY_STATUS.get(current, LifecycleEvent.INVITE)
    target = apply(event, current, actor)
    if not profile.get("email"):
        raise Conflict(
            "the customer has no e-mail address, so no invitation can be sent; add one first",
            {"field": "email", "customer_id": profile["customer_id"]},
        )
    last = profile.get("last_invited_at")
    if not override_cadence:
        problem = too_soon(str(last) if last else None, settings, at, profile["customer_id"])
        if problem is not None:
            raise problem
    # A customer made pending by a status edit was never e-mailed: its first e-mail starts a round.
    new_round = event is not LifecycleEvent.REMIND or not profile.get("invited_at")
    reminders = 0 if new_round else int(profile.get("reminders_sent") or 0) + 1
    updates: dict[str, Any] = {
        "program_status": target.value,
        "last_invited_at": iso(at),
        "invitation_count": int(profile.get("invitation_count") or 0) + 1,
        "reminders_sent": reminders,
        "invite_due_at": next_due(at, settings, reminders),
    }
    if new_round:
        # invited_at starts a round; tokens of earlier rounds stop working (see token_problem).
        updates["invited_at"] = iso(at)
    cutoff = None if override_cadence else cadence_cutoff(at, settings)
    return SendPlan(event, "invitation" if new_round else "reminder", target, updates, cutoff)


# Fields an invitation e-mail changes: restored as they were when the e-mail could not be sent.
INVITATION_FIELDS = (
    "program_status",
    "invited_at",
    "last_invited_at",
    "invitation_count",
    "reminders_sent",
    "invite_due_at",
)


def restored(current: ProfileRecord, before: ProfileRecord) -> ProfileRecord:
    """`current` with the invitation fields put back to `before` (absent stays absent)."""
    return updated(current, {name: before.get(name) for name in INVITATION_FIELDS})


def new_token() -> tuple[str, str]:
    """(token for the e-mail link, its hash for the table). Only the hash is ever stored."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_problem(token_item: InvitationTokenRecord, profile: ProfileRecord | None, at: str) -> Gone | None:
    """Why a stored token can no longer be answered (410), or None when it can."""
    if token_item.get("used_at"):
        return Gone("this invitation link was already used", {"reason": "used"})
    if str(token_item.get("expires_at", "")) <= at:
        return Gone("this invitation link has expired; ask for a new invitation", {"reason": "expired"})
    if profile is None:
        return Gone("this invitation is no longer open", {"reason": "closed"})
    if profile.get("program_status") != ProgramStatus.PENDING.value:
        return Gone("this invitation was already answered or withdrawn", {"reason": "closed"})
    if profile.get("invited_at") != token_item.get("invited_at"):
        return Gone("a newer invitation replaced this link", {"reason": "superseded"})
    return None
