"""Bugs the load benchmark (bench/bench_load.py) found, pinned as tests."""

from __future__ import annotations

from tests.support import Api


def test_inviting_a_customer_made_pending_by_a_status_edit_sends_a_first_invitation(api: Api) -> None:
    # Given a customer set to pending by staff through the status route (no e-mail sent yet)
    cid = api.ok("POST", "/v1/customers", {"email": "pend@example.com"})["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "pending", "reason": "phoned"})
    assert api.ok("GET", f"/v1/customers/{cid}")["invited_at"] is None
    # When staff send the invitation (was a 500: KeyError 'invited_at')
    sent = api("POST", f"/v1/customers/{cid}/invitations")
    # Then it is sent as the first invitation of a round, and audited once
    assert sent.status == 200, sent
    profile = api.ok("GET", f"/v1/customers/{cid}")
    assert profile["invited_at"] is not None and profile["invitation_count"] == 1
    assert profile["version"] == 3
    assert len(api.ok("GET", f"/v1/customers/{cid}/history")["items"]) == 3
