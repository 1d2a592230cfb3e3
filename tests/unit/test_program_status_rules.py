"""Rules behind the status routes that need no AWS: planned events, erasure, scrubbing."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.lifecycle import Actor, Event, ProgramStatus, event_for_target
from loyalty.repository.program_status import (
    ERASED_REASON,
    erased_fields,
    erased_profile,
    resolve_deferred,
    scrub_text,
)
from loyalty.services.program_status import OPT_OUT_EXCLUDES, STAFF_EDIT_EXCLUDES, planned_events

S, A, E = ProgramStatus, Actor, Event


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
    target: ProgramStatus, actor: Actor, excluded: frozenset[Event], plan: dict[str, str]
) -> None:
    # When the one-request path plans a change to `target`
    planned = planned_events(target, actor, excluded)
    # Then it names exactly the table's statuses and events for that actor
    assert planned == plan
    # And each agrees with the event a read of that status would pick
    for source, event in planned.items():
        assert event_for_target(S(source), target, actor, excluded).value == event


def test_erasure_keeps_only_the_whitelist_and_deletes_cards() -> None:
    # Given a profile with personal data, a field nobody listed yet, cards and statuses
    profile: dict[str, Any] = {
        "business_id": "b",
        "customer_id": "c",
        "program_status": "active",
        "version": 4,
        "created_at": "t0",
        "updated_at": "t1",
        "email": "a@example.com",
        "phone": "+1555",
        "first_name": "Ann",
        "last_name": "Lee",
        "external_id": "X1",
        "device_id": "dev-9",
        "attributes": {"shoe_size": 9},
        "birthday": "1990-01-01",
        "marketing_consent": True,
        "statuses": {"VIP": {}},
        "cards": [{"number": "1", "state": "activated"}, {"number": "2", "state": "blocked"}],
        "balance": 30,
    }
    # When it is erased for exclusion
    after = erased_profile(profile, "excluded")
    # Then nothing personal is left, unknown fields included, and cards are deleted
    for field in ("email", "phone", "first_name", "last_name", "external_id", "device_id", "birthday"):
        assert field not in after
    assert after["attributes"] == {} and after["statuses"] == {} and after["marketing_consent"] is False
    assert after["cards"] == [{"number": "1", "state": "deleted"}, {"number": "2", "state": "deleted"}]
    assert (after["program_status"], after["balance"], after["version"]) == ("excluded", 30, 4)
    # And the audit names the erased fields without their values
    names = erased_fields(profile)
    assert names == sorted(
        ["email", "phone", "first_name", "last_name", "external_id", "device_id", "attributes", "birthday"]
    )
    assert "a@example.com" not in str(names)


@pytest.mark.parametrize(
    ("reason", "stored"),
    [
        ("asked by phone", "asked by phone"),
        ("ANN LEE asked", ERASED_REASON),
        ("mail from a@example.com", ERASED_REASON),
        (None, None),
    ],
)
def test_a_reason_quoting_personal_data_is_replaced(reason: str | None, stored: str | None) -> None:
    assert scrub_text(reason, ["a@example.com", "Ann Lee", "Ann", "Lee"]) == stored


def test_from_status_is_the_previous_events_to_status() -> None:
    # Given a page where the two newest changes were written without a read, one with its
    # event depending on the status it started from
    by_from = {"imported": "invite", "inactive": "reinvite"}
    events = [
        {
            "version": 4,
            "event": None,
            "from_status": None,
            "to_status": "pending",
            "details": {"from_version": 3, "event_by_from": by_from},
        },
        {
            "version": 3,
            "event": "disconnect",
            "from_status": None,
            "to_status": "inactive",
            "details": {"from_version": 2},
        },
        {"version": 2, "event": "register", "from_status": "imported", "to_status": "active", "details": {}},
        {"version": 1, "event": "import", "from_status": None, "to_status": "imported", "details": {}},
    ]
    # When the page is completed
    resolve_deferred("b", "c", events)
    # Then each change starts where the previous one ended; a create still starts from none
    assert [e["from_status"] for e in events] == ["inactive", "active", "imported", None]
    # And the deferred event is the one its start status leads to
    assert [e["event"] for e in events] == ["reinvite", "disconnect", "register", "import"]
