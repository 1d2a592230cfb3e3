"""Planned events of a status change (loyalty.services.program_status): no AWS."""

from __future__ import annotations

import pytest

from loyalty.domain.lifecycle import Actor, LifecycleEvent, ProgramStatus, event_for_target
from loyalty.services.program_status import OPT_OUT_EXCLUDES, STAFF_EDIT_EXCLUDES, planned_events

S, A, E = ProgramStatus, Actor, LifecycleEvent


@pytest.mark.parametrize(
    ("target", "actor", "excluded", "plan"),
    [
        (S.INACTIVE, A.STAFF, STAFF_EDIT_EXCLUDES, {"active": "disconnect", "pending": "disconnect"}),
        # never a reminder; imported and inactive reach pending by different events
        (S.PENDING, A.STAFF, STAFF_EDIT_EXCLUDES, {"imported": "invite", "inactive": "reinvite"}),
        (
            S.ACTIVE,
            A.STAFF,
            STAFF_EDIT_EXCLUDES,
            dict.fromkeys(("imported", "pending", "inactive", "anonymous"), "register"),
        ),
        (S.EXCLUDED, A.STAFF, STAFF_EDIT_EXCLUDES, {}),  # exclusion has its own route
        (S.MERGED, A.STAFF, STAFF_EDIT_EXCLUDES, {}),  # system only
        (S.INACTIVE, A.SERVICE, STAFF_EDIT_EXCLUDES, {}),
        (S.INACTIVE, A.CUSTOMER, OPT_OUT_EXCLUDES, {"active": "disconnect", "pending": "disconnect"}),
        (S.INACTIVE, A.INVITEE, OPT_OUT_EXCLUDES, {}),  # declining is the invitation's route
    ],
)
def test_planned_events_are_the_table_rows_the_actor_may_use(
    target: ProgramStatus, actor: Actor, excluded: frozenset[LifecycleEvent], plan: dict[str, str]
) -> None:
    # When the one-request path plans a change to `target`
    planned = planned_events(target, actor, excluded)
    # Then it names exactly the table's statuses and events for that actor
    assert planned == plan
    # And each agrees with the event a read of that status would pick
    for source, event in planned.items():
        assert event_for_target(S(source), target, actor, excluded).value == event
