"""50 concurrent conflicting status changes on one customer: no lost update, history in order.

The threads call the use case the handler calls (the handler only parses and delegates):
Powertools keeps the current event on a class attribute (`BaseRouter.current_event`), so
one process cannot run two HTTP events at once, and Lambda never asks it to. moto applies
a transaction as check-then-write in Python and, when one fails, restores a deep copy of
the whole table; DynamoDB serialises each request, so the test serialises each moto
request with one lock. Between a thread's read and its conditional write, other threads
run freely: that gap is what the version conditions must protect.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support import Api

THREADS = 50


def test_concurrent_conflicting_changes_apply_legal_transitions_in_version_order(
    api: Api, serialised_moto: None
) -> None:
    from loyalty.domain import lifecycle
    from loyalty.domain.errors import Conflict
    from loyalty.domain.principal import Principal, Role
    from loyalty.schemas.program_status import OptOutRequest, ProgramStatusChange
    from loyalty.services import program_status

    # Given an active customer at version 2
    cid = api.ok("POST", "/v1/customers", {"email": "race@example.com"})["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "active"})
    staff = Principal(sub="staff-user", business_id="biz-1", role=Role.STAFF)
    me = Principal(sub=cid, business_id="biz-1", role=Role.CUSTOMER)
    targets = ["inactive", "pending", "active", "inactive", "active"]
    barrier = threading.Barrier(THREADS)

    def attempt(i: int) -> tuple[int, str, Any]:
        # A mix: reads-then-writes, writes naming the version every caller saw (2), opt-outs.
        barrier.wait()
        try:
            if i % 5 == 4:
                result = program_status.opt_out(me, cid, OptOutRequest())
            else:
                body = ProgramStatusChange.model_validate(
                    {"status": targets[i % 5], **({"expected_version": 2} if i % 3 == 0 else {})}
                )
                result = program_status.change_program_status(staff, cid, body)
        except Conflict as refused:
            return i, "refused", refused.code
        return i, "applied", result

    # When 50 threads change the same customer at once
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(attempt, range(THREADS)))

    # Then each call either applied a change or was refused with a 409 code
    applied = [o[2] for o in outcomes if o[1] == "applied"]
    refused = [o[2] for o in outcomes if o[1] == "refused"]
    assert len(applied) + len(refused) == THREADS
    assert set(refused) <= {"illegal_transition", "version_conflict"}
    assert applied, "at least one change must win"
    # And the versions handed out are distinct and consecutive after 2: no lost update
    assert sorted(r.version for r in applied) == list(range(3, 3 + len(applied)))
    # And the history shows exactly the applied changes, in version order, each legal
    events = list(reversed(api.ok("GET", f"/v1/customers/{cid}/history", query={"limit": 100})["items"]))
    changes = events[2:]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert sorted((r.version, r.event) for r in applied) == [(e["version"], e["event"]) for e in changes]
    previous = "active"
    for event in changes:
        assert event["from_status"] == previous, event
        actor = lifecycle.Actor(event["actor"]["role"])
        assert (
            lifecycle.apply(
                lifecycle.LifecycleEvent(event["event"]), lifecycle.ProgramStatus(previous), actor
            )
            == (event["to_status"])
        )
        previous = event["to_status"]
    # And the profile ends where the last change left it
    final = api.ok("GET", f"/v1/customers/{cid}")
    assert (final["version"], final["program_status"]) == (2 + len(applied), previous)
