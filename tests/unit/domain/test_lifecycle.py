"""Every row of the transition and eligibility tables in docs/design.md, checked against lifecycle.py."""

from __future__ import annotations

import pytest

from loyalty.domain.errors import Forbidden, IllegalTransition
from loyalty.domain.lifecycle import (
    ELIGIBILITY,
    TRANSITIONS,
    Actor,
    LifecycleEvent,
    ProgramStatus,
    apply,
    can_earn,
    can_redeem,
    describe_allowed,
    event_for_target,
    may_receive,
)

S, A, E = ProgramStatus, Actor, LifecycleEvent
ALL_STATUSES: list[ProgramStatus | None] = [None, *ProgramStatus]

# docs/design.md#program-status-lifecycle, transcribed independently of the code: (event, from, to, who may).
DESIGN_TABLE: list[tuple[LifecycleEvent, set[ProgramStatus | None], ProgramStatus, set[Actor]]] = [
    (E.IMPORT, {None}, S.IMPORTED, {A.ADMIN, A.SERVICE, A.STAFF}),
    (E.INVITE, {S.IMPORTED}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    (E.REMIND, {S.PENDING}, S.PENDING, {A.STAFF, A.ADMIN, A.SCHEDULER}),
    (E.REINVITE, {S.INACTIVE}, S.PENDING, {A.STAFF, A.ADMIN}),
    (E.ACCEPT, {S.PENDING}, S.ACTIVE, {A.INVITEE}),
    (E.DECLINE, {S.PENDING}, S.INACTIVE, {A.INVITEE}),
    # `None`: a person registering for the first time becomes an active customer directly.
    (
        E.REGISTER,
        {S.IMPORTED, S.PENDING, S.INACTIVE, S.ANONYMOUS, None},
        S.ACTIVE,
        {A.CUSTOMER, A.STAFF, A.ADMIN, A.SERVICE},
    ),
    (E.ANONYMOUS_SIGNUP, {None}, S.ANONYMOUS, {A.CUSTOMER, A.SERVICE}),
    (E.PACK_CARD, {None}, S.NEW, {A.ADMIN}),
    (E.MERGE, {S.NEW}, S.MERGED, {A.SYSTEM}),
    (E.DISCONNECT, {S.ACTIVE, S.PENDING}, S.INACTIVE, {A.STAFF, A.ADMIN, A.CUSTOMER}),
    (E.EXCLUDE, set(ProgramStatus) - {S.MERGED, S.EXCLUDED}, S.EXCLUDED, {A.CUSTOMER, A.STAFF, A.ADMIN}),
]

CASES = [
    (event, source, target, actor, source in sources, actor in actors)
    for event, sources, target, actors in DESIGN_TABLE
    for source in ALL_STATUSES
    for actor in Actor
]


def test_table_covers_every_event_once() -> None:
    # Given the code's transition table / Then it has one row per event of the design
    assert sorted(t.event for t in TRANSITIONS) == sorted(row[0] for row in DESIGN_TABLE)


@pytest.mark.parametrize(("event", "source", "target", "actor", "legal", "permitted"), CASES)
def test_every_transition_cell(
    event: LifecycleEvent,
    source: ProgramStatus | None,
    target: ProgramStatus,
    actor: Actor,
    legal: bool,
    permitted: bool,
) -> None:
    # Given a status, an event and an actor
    if legal and permitted:
        # When it is applied / Then it leads where the design says
        assert apply(event, source, actor) is target
    elif not legal:
        # Then an illegal source is refused, naming the transitions that exist
        with pytest.raises(IllegalTransition) as err:
            apply(event, source, actor)
        assert err.value.details["allowed"] == describe_allowed(source)
        assert "allowed from" in err.value.message
    else:
        # Then a legal source with the wrong actor is forbidden
        with pytest.raises(Forbidden):
            apply(event, source, actor)


def test_terminal_statuses_allow_nothing() -> None:
    # Given the terminal statuses / Then no transition leaves them
    assert describe_allowed(S.EXCLUDED) == []
    assert describe_allowed(S.MERGED) == []


def test_staff_edit_finds_the_event_from_the_target() -> None:
    # Given staff naming only a target status / Then the right event is chosen
    assert event_for_target(S.ACTIVE, S.INACTIVE, A.STAFF) is E.DISCONNECT
    assert event_for_target(S.INACTIVE, S.PENDING, A.STAFF) is E.REINVITE
    assert event_for_target(S.IMPORTED, S.PENDING, A.STAFF) is E.INVITE
    # And a target with no path is refused with the allowed list
    with pytest.raises(IllegalTransition) as err:
        event_for_target(S.IMPORTED, S.INACTIVE, A.STAFF)
    assert {"event": "invite", "to": "pending"} in err.value.details["allowed"]
    # And the scheduler can never re-invite
    with pytest.raises(Forbidden):
        event_for_target(S.INACTIVE, S.PENDING, A.SCHEDULER)


# docs/design.md#eligibility: (earns, redeems, communications).
ELIGIBILITY_TABLE = {
    S.IMPORTED: (False, False, {"invitation"}),
    S.PENDING: (False, False, {"reminder"}),
    S.ACTIVE: (True, True, {"invitation", "reminder", "marketing", "in_app"}),
    S.INACTIVE: (False, False, set()),
    S.ANONYMOUS: (True, "anonymous_can_redeem", {"in_app"}),
    S.NEW: (True, "new_card_can_redeem", set()),
    S.MERGED: (False, False, set()),
    S.EXCLUDED: (False, False, set()),
}


@pytest.mark.parametrize("status", list(ProgramStatus))
def test_eligibility_rows(status: ProgramStatus) -> None:
    earns, redeems, comms = ELIGIBILITY_TABLE[status]
    # Then earning follows the table
    assert can_earn(status) is earns
    # And redeeming follows the table, or the business setting it names
    if isinstance(redeems, str):
        assert can_redeem(status, {redeems: True}) is True
        assert can_redeem(status, {redeems: False}) is False
        assert can_redeem(status) is False
    else:
        assert can_redeem(status, {"anonymous_can_redeem": True, "new_card_can_redeem": True}) is redeems
    # And communications: what may go out with marketing consent given
    allowed = {k for k in ("invitation", "reminder", "marketing", "in_app") if may_receive(status, k, True)}
    assert allowed == comms
    assert status in ELIGIBILITY


def test_marketing_needs_consent_for_active_customers() -> None:
    # Given an active customer without marketing consent / Then only the invitation flow may reach them
    assert may_receive(S.ACTIVE, "marketing", marketing_consent=False) is False
    assert may_receive(S.ACTIVE, "marketing", marketing_consent=True) is True
