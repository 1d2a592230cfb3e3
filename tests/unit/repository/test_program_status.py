"""Filling the history of changes written without a read (loyalty.repository.program_status)."""

from __future__ import annotations

from loyalty.repository.program_status import resolve_deferred


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
