"""Invitation rules without AWS (loyalty.domain.invitations): who is due when, what one e-mail changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.domain.clock import iso
from loyalty.domain.errors import Conflict, Forbidden, IllegalTransition
from loyalty.domain.invitations import (
    TooSoon,
    cadence_cutoff,
    index_due_at,
    new_token,
    next_due,
    plan_send,
    restored,
    token_hash,
    token_problem,
    too_soon,
)
from loyalty.domain.lifecycle import Actor, LifecycleEvent, ProgramStatus
from loyalty.schemas.invitations import InvitationSettings

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREATED = "2026-02-01T00:00:00.000000Z"


def profile(status: str = "imported", **fields: Any) -> dict[str, Any]:
    return {
        "business_id": "b",
        "customer_id": "c",
        "program_status": status,
        "email": "ann@example.com",
        "created_at": CREATED,
        "invitation_count": 0,
        **fields,
    }


# --- who is due -------------------------------------------------------------------------


def test_imported_customer_with_email_is_due_from_creation() -> None:
    # Given an imported customer with an e-mail and no due time / Then due since it was created
    assert index_due_at(profile()) == CREATED
    # And an explicit due time wins
    assert index_due_at(profile(invite_due_at="2026-05-01T00:00:00.000000Z")) == "2026-05-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    "case",
    [
        profile(email=None),
        profile("pending"),  # pending without a scheduled reminder: max reminders reached
        profile("pending", email=None, invite_due_at=CREATED),
        *[
            profile(s.value, invite_due_at=CREATED)
            for s in ProgramStatus
            if s.value not in ("imported", "pending")
        ],
    ],
)
def test_customers_never_due(case: dict[str, Any]) -> None:
    # When the customer has no e-mail, no reminder left, or a status that gets no invitation
    # Then they are not in the invitation index
    assert index_due_at(case) is None


def test_pending_customer_is_due_at_its_reminder_time() -> None:
    assert index_due_at(profile("pending", invite_due_at="2026-03-08T12:00:00.000000Z")) == (
        "2026-03-08T12:00:00.000000Z"
    )


def test_next_due_until_max_reminders() -> None:
    # Given 3 reminder days and at most 2 reminders
    s = InvitationSettings(reminder_after_days=3, max_reminders=2)
    # Then after 0 or 1 reminders the next is due 3 days later, after 2 none
    assert next_due(AT, s, 0) == iso(AT + timedelta(days=3))
    assert next_due(AT, s, 1) == iso(AT + timedelta(days=3))
    assert next_due(AT, s, 2) is None
    assert next_due(AT, InvitationSettings(max_reminders=0), 0) is None


# --- what one e-mail changes --------------------------------------------------------------


def test_invite_starts_a_round() -> None:
    # When an imported customer is invited
    plan = plan_send(profile(), InvitationSettings(), AT, Actor.SCHEDULER)
    # Then it becomes pending, counts one e-mail, and the first reminder is due 7 days later
    assert (plan.event, plan.kind, plan.target) == (
        LifecycleEvent.INVITE,
        "invitation",
        ProgramStatus.PENDING,
    )
    assert plan.updates == {
        "program_status": "pending",
        "invited_at": iso(AT),
        "last_invited_at": iso(AT),
        "invitation_count": 1,
        "reminders_sent": 0,
        "invite_due_at": iso(AT + timedelta(days=7)),
    }


def test_the_last_reminder_clears_the_due_time() -> None:
    # Given a pending customer who already got 1 of 2 reminders
    pending = profile("pending", invited_at="x", invitation_count=2, reminders_sent=1)
    # When reminded
    plan = plan_send(pending, InvitationSettings(max_reminders=2), AT, Actor.SCHEDULER)
    # Then it is a reminder, keeps its round, and no further reminder is scheduled
    assert (plan.event, plan.kind) == (LifecycleEvent.REMIND, "reminder")
    assert "invited_at" not in plan.updates
    assert plan.updates["reminders_sent"] == 2 and plan.updates["invite_due_at"] is None
    assert plan.updates["invitation_count"] == 3


def test_reinvite_is_staff_only_and_restarts_the_round() -> None:
    # Given a customer who declined
    inactive = profile("inactive", invited_at="old", reminders_sent=2, invitation_count=3)
    # When the scheduler tries / Then forbidden
    with pytest.raises(Forbidden):
        plan_send(inactive, InvitationSettings(), AT, Actor.SCHEDULER)
    # When staff re-invite / Then a new round starts
    plan = plan_send(inactive, InvitationSettings(), AT, Actor.STAFF)
    assert plan.event is LifecycleEvent.REINVITE
    assert (plan.updates["invited_at"], plan.updates["reminders_sent"]) == (iso(AT), 0)


def test_refusals() -> None:
    # When the customer joined already / Then illegal transition
    with pytest.raises(IllegalTransition):
        plan_send(profile("active"), InvitationSettings(), AT, Actor.STAFF)
    # When the customer has no e-mail / Then a conflict that says why
    with pytest.raises(Conflict, match="no e-mail"):
        plan_send(profile(email=None), InvitationSettings(), AT, Actor.STAFF)


def test_restored_puts_invitation_fields_back() -> None:
    # Given a profile before and after an invitation
    before = profile()
    after = {**before, **plan_send(before, InvitationSettings(), AT, Actor.STAFF).updates, "version": 2}
    # When restored / Then the invitation fields are as before (absent ones cleared), the rest kept
    back = restored(after, before)
    assert back["program_status"] == "imported" and back["invitation_count"] == 0
    assert back["invited_at"] is None and back["invite_due_at"] is None and back["version"] == 2
    assert index_due_at(back) == CREATED


# --- cadence ---------------------------------------------------------------------------------


def test_cadence_allows_one_email_per_reminder_days() -> None:
    # Given 7 days between e-mails and an e-mail at AT
    s = InvitationSettings(reminder_after_days=7)
    last = iso(AT)
    # Then up to just before 7 days later another is too soon, naming when it is allowed
    problem = too_soon(last, s, AT + timedelta(days=7) - timedelta(microseconds=1), "c")
    assert isinstance(problem, TooSoon) and problem.code == "too_soon"
    assert problem.details["next_allowed_at"] == iso(AT + timedelta(days=7))
    assert problem.details["last_invited_at"] == last
    # And from exactly 7 days on it is allowed; with no e-mail before, at once
    assert too_soon(last, s, AT + timedelta(days=7), "c") is None
    assert too_soon(None, s, AT, "c") is None
    # And the write condition's cutoff agrees with the check (ISO strings compare as times)
    assert cadence_cutoff(AT + timedelta(days=7), s) == last


def test_plan_send_refuses_too_soon_unless_overridden() -> None:
    # Given a pending customer e-mailed a day ago
    pending = profile("pending", invited_at=iso(AT), last_invited_at=iso(AT - timedelta(days=1)))
    # When staff plan another e-mail / Then too soon
    with pytest.raises(TooSoon):
        plan_send(pending, InvitationSettings(), AT, Actor.STAFF)
    # When an override is planned / Then it is a reminder with no cadence condition on the claim
    plan = plan_send(pending, InvitationSettings(), AT, Actor.STAFF, override_cadence=True)
    assert plan.event is LifecycleEvent.REMIND and plan.cadence_cutoff is None
    # And an ordinary plan carries the cutoff its claim is conditioned on
    later = plan_send(pending, InvitationSettings(), AT + timedelta(days=6), Actor.STAFF)
    assert later.cadence_cutoff == iso(AT - timedelta(days=1))


def test_transition_refusals_come_before_the_cadence() -> None:
    # Given a customer who joined a minute after an e-mail / When invited / Then the transition says why
    joined = profile("active", last_invited_at=iso(AT))
    with pytest.raises(IllegalTransition):
        plan_send(joined, InvitationSettings(), AT, Actor.STAFF)


# --- tokens ---------------------------------------------------------------------------------


def test_tokens_are_unguessable_and_stored_as_hashes() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    token, hashed = next(iter(tokens))
    assert len(token) >= 43 and hashed == token_hash(token) and token not in hashed


def test_token_problems() -> None:
    now = "2026-03-02T00:00:00.000000Z"
    pending = profile("pending", invited_at="r1")
    good = {"invited_at": "r1", "expires_at": "2026-03-31T00:00:00.000000Z"}
    assert token_problem(good, pending, now) is None
    cases = [
        ({**good, "used_at": now}, pending, "used"),
        ({**good, "expires_at": now}, pending, "expired"),
        (good, profile("active", invited_at="r1"), "closed"),
        (good, None, "closed"),
        (good, profile("pending", invited_at="r2"), "superseded"),
    ]
    for token_item, customer, reason in cases:
        problem = token_problem(token_item, customer, now)
        assert problem is not None and problem.details["reason"] == reason
