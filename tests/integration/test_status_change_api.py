"""Program-status routes through the real lambda_handler on moto: staff edits, opt-out, exclusion."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import Api, Aws, load_event, table_items


def create(api: Api, business: str = "biz-1", **fields: Any) -> dict[str, Any]:
    body = fields or {"email": f"someone-{uuid.uuid4().hex[:8]}@example.com"}
    return api.ok("POST", "/v1/customers", body, business=business)


def put_status(api: Api, cid: str, status: str, **kw: Any) -> Any:
    body: dict[str, Any] = {"status": status}
    for name in ("reason", "expected_version"):
        if name in kw:
            body[name] = kw.pop(name)
    return api("PUT", f"/v1/customers/{cid}/program-status", body, **kw)


def history(api: Api, cid: str) -> list[dict[str, Any]]:
    return api.ok("GET", f"/v1/customers/{cid}/history")["items"]


def reach(api: Api, status: str) -> dict[str, Any]:
    """A customer in `status`, reached through the staff route itself."""
    customer = create(api)
    path = {"imported": [], "pending": ["pending"], "active": ["active"], "inactive": ["active", "inactive"]}
    for step in path[status]:
        assert put_status(api, customer["customer_id"], step).status == 200
    return api.ok("GET", f"/v1/customers/{customer['customer_id']}")


@pytest.mark.parametrize(
    ("start", "target", "event"),
    [
        ("imported", "pending", "invite"),
        ("imported", "active", "register"),
        ("pending", "active", "register"),
        ("pending", "inactive", "disconnect"),
        ("active", "inactive", "disconnect"),
        ("inactive", "pending", "reinvite"),
        ("inactive", "active", "register"),
    ],
)
@pytest.mark.parametrize("with_version", [False, True])
def test_staff_moves_a_customer_along_the_transition_table(
    api: Api, start: str, target: str, event: str, with_version: bool
) -> None:
    # Given a customer in `start`
    customer = reach(api, start)
    cid, version = customer["customer_id"], customer["version"]
    # When staff set the target status (with or without the version they saw)
    extra = {"expected_version": version} if with_version else {}
    response = put_status(api, cid, target, reason="asked at the counter", **extra)
    # Then the transition table's event is applied and the version grows by one; unread,
    # a target reached by two events (pending) names the event for each possible start
    assert response.status == 200, response
    if with_version and target == "pending":
        assert response.body["event"] is None
        assert response.body["possible_events"] == {"imported": "invite", "inactive": "reinvite"}
    else:
        assert (response.body["event"], response.body["possible_events"]) == (event, None)
    assert response.body["program_status"] == target
    assert response.body["version"] == version + 1
    # And the profile and the history agree, with from/to, actor and reason
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == target
    newest = history(api, cid)[0]
    assert (newest["version"], newest["event"], newest["from_status"], newest["to_status"]) == (
        version + 1,
        event,
        start,
        target,
    )
    assert newest["actor"] == {"sub": "staff-user", "role": "staff"}
    assert newest["reason"] == "asked at the counter"
    # And the stored index keys are the ones a full write of this profile would derive
    assert_index_keys_consistent(cid)


def assert_index_keys_consistent(cid: str) -> None:
    from loyalty.repository.customers import require_profile, strip_keys, with_index_keys

    stored = require_profile("biz-1", cid)
    derived = with_index_keys(strip_keys(stored))
    index = ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK")
    assert {k: stored.get(k) for k in index} == {k: derived.get(k) for k in index}


@pytest.mark.parametrize("with_version", [False, True])
def test_an_illegal_change_is_409_listing_the_transitions_that_exist(api: Api, with_version: bool) -> None:
    # Given an imported customer
    customer = create(api)
    cid = customer["customer_id"]
    extra = {"expected_version": 1} if with_version else {}
    # When staff try to make them inactive
    response = put_status(api, cid, "inactive", **extra)
    # Then it is refused, naming what is possible from imported
    assert response.status == 409, response
    assert response.body["error"]["code"] == "illegal_transition"
    allowed = {(a["event"], a["to"]) for a in response.body["error"]["details"]["allowed"]}
    assert allowed == {("invite", "pending"), ("register", "active"), ("exclude", "excluded")}
    # And nothing changed
    assert api.ok("GET", f"/v1/customers/{cid}")["version"] == 1
    assert len(history(api, cid)) == 1


def test_excluded_through_put_points_to_the_exclusion_route(api: Api) -> None:
    cid = create(api)["customer_id"]
    response = put_status(api, cid, "excluded")
    assert response.status == 409, response
    assert response.body["error"]["details"]["route"].endswith("/exclusion")
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == "imported"


def test_merged_is_system_only(api: Api, aws: Aws) -> None:
    # Given a `new` virtual owner of a packed card (stored as the card-pack use case does)
    from loyalty.domain.lifecycle import ProgramStatus
    from loyalty.repository import customers as repo
    from loyalty.services.customers import new_profile

    profile = new_profile("biz-1", {}, ProgramStatus.NEW)
    repo.commit(repo.Write(after=profile, entry=repo.AuditEntry("pack_card", {"role": "admin"}, None, "new")))
    # When staff try to set it merged, with and without a version
    for extra in ({}, {"expected_version": 1}):
        response = put_status(api, profile["customer_id"], "merged", **extra)
        # Then the actor is refused
        assert response.status == 403, response


@pytest.mark.parametrize(
    ("role", "start", "target", "status"),
    [
        ("customer", "active", "inactive", 403),  # customers opt out on their own route
        ("service", "active", "inactive", 403),  # disconnect is staff/admin/customer only
        ("admin", "active", "inactive", 200),
        ("service", "inactive", "active", 200),  # register allows the service role
    ],
)
def test_roles_follow_the_transition_table(api: Api, role: str, start: str, target: str, status: int) -> None:
    customer = reach(api, start)
    cid = customer["customer_id"]
    response = put_status(api, cid, target, role=role, sub=cid if role == "customer" else None)
    assert response.status == status, response
    expected = target if status == 200 else start
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == expected


def test_unknown_and_other_business_customers_are_404(api: Api) -> None:
    cid = create(api, business="biz-2")["customer_id"]
    for path_id in (cid, "no-such-customer"):
        for extra in ({}, {"expected_version": 1}):
            assert put_status(api, path_id, "pending", **extra).status == 404
        assert api("POST", f"/v1/customers/{path_id}/opt-out").status == 404
        assert api("POST", f"/v1/customers/{path_id}/exclusion").status == 404
    # And the other business's customer is untouched
    assert api.ok("GET", f"/v1/customers/{cid}", business="biz-2")["version"] == 1


def test_stale_expected_version_is_409_naming_the_current_version(api: Api) -> None:
    # Given a customer at version 2
    customer = reach(api, "active")
    cid = customer["customer_id"]
    assert customer["version"] == 2
    # When a change names version 1
    response = put_status(api, cid, "inactive", expected_version=1)
    # Then it is refused with the current version, and nothing changed
    assert response.status == 409, response
    assert response.body["error"]["code"] == "version_conflict"
    assert response.body["error"]["details"]["current_version"] == 2
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == "active"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"status": "bogus"}, 422, "status"),
        ({"status": "active", "colour": "red"}, 422, "colour"),
        ({"status": "active", "expected_version": 0}, 422, "expected_version"),
        ({"status": "active", "reason": "x" * 501}, 422, "reason"),
        ({}, 422, "status"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    cid = create(api)["customer_id"]
    response = api("PUT", f"/v1/customers/{cid}/program-status", body)
    assert response.status == status, response
    assert field in [f["field"] for f in response.body["error"]["details"]["fields"]]
    assert api.ok("GET", f"/v1/customers/{cid}")["version"] == 1


def test_malformed_json_is_400(api: Api) -> None:
    cid = create(api)["customer_id"]
    for method, suffix in (("PUT", "program-status"), ("POST", "opt-out"), ("POST", "exclusion")):
        response = api(method, f"/v1/customers/{cid}/{suffix}", raw_body="{not json")
        assert response.status == 400, response
    assert api.ok("GET", f"/v1/customers/{cid}")["version"] == 1


# --- opt-out -----------------------------------------------------------------------------


def test_the_customer_opts_out_themself(api: Api) -> None:
    # Given an active customer
    cid = reach(api, "active")["customer_id"]
    # When they opt out with their own token (no body)
    response = api("POST", f"/v1/customers/{cid}/opt-out", role="customer", sub=cid)
    # Then they are inactive, and the history records them as the actor
    assert response.status == 200, response
    assert response.body["event"] == "disconnect"
    assert response.body["program_status"] == "inactive"
    newest = history(api, cid)[0]
    assert newest["actor"] == {"sub": cid, "role": "customer"}
    assert (newest["from_status"], newest["to_status"]) == ("active", "inactive")
    # And opting out again is refused: they are already disconnected
    again = api("POST", f"/v1/customers/{cid}/opt-out", role="customer", sub=cid)
    assert again.status == 409 and again.body["error"]["code"] == "illegal_transition"


def test_a_customer_cannot_opt_out_someone_else(api: Api) -> None:
    cid = reach(api, "active")["customer_id"]
    response = api("POST", f"/v1/customers/{cid}/opt-out", role="customer", sub="another-customer")
    assert response.status == 404
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == "active"


def test_staff_opt_out_with_expected_version_and_reason(api: Api) -> None:
    customer = reach(api, "pending")
    cid = customer["customer_id"]
    body = {"reason": "phoned in", "expected_version": customer["version"]}
    response = api("POST", f"/v1/customers/{cid}/opt-out", body)
    assert response.status == 200, response
    newest = history(api, cid)[0]
    assert (newest["event"], newest["from_status"], newest["reason"]) == (
        "disconnect",
        "pending",
        "phoned in",
    )


def test_opt_out_of_an_imported_customer_is_refused(api: Api) -> None:
    cid = create(api)["customer_id"]
    response = api("POST", f"/v1/customers/{cid}/opt-out")
    assert response.status == 409
    assert response.body["error"]["code"] == "illegal_transition"


# --- lists --------------------------------------------------------------------------------


def test_lists_by_program_status_follow_every_change(api: Api) -> None:
    # Given two active customers
    first = reach(api, "active")["customer_id"]
    second = reach(api, "active")["customer_id"]

    def listed(status: str) -> set[str]:
        return {c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"status": status})["items"]}

    assert listed("active") == {first, second}
    # When one is disconnected without a read and the other opts out
    assert put_status(api, first, "inactive", expected_version=2).status == 200
    assert api("POST", f"/v1/customers/{second}/opt-out", role="customer", sub=second).status == 200
    # Then the lists show them where they now are, with their new status
    assert listed("active") == set()
    assert listed("inactive") == {first, second}
    items = api.ok("GET", "/v1/customers", query={"status": "inactive"})["items"]
    assert {c["program_status"] for c in items} == {"inactive"}
    # When one is re-invited
    assert put_status(api, first, "pending").status == 200
    assert listed("pending") == {first}
    assert listed("inactive") == {second}


# --- idempotency ----------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(api: Api) -> None:
    # Given an active customer
    cid = reach(api, "active")["customer_id"]
    headers = {"Idempotency-Key": "change-1"}
    # When the same change is sent twice with the same key
    first = put_status(api, cid, "inactive", headers=headers)
    second = put_status(api, cid, "inactive", headers=headers)
    # Then both get the first answer
    assert first.status == 200, first
    assert (second.status, second.body) == (first.status, first.body)
    # And the history shows one change
    assert [e["event"] for e in history(api, cid)].count("disconnect") == 1
    # When the key is reused with another body
    reused = put_status(api, cid, "pending", headers=headers)
    # Then it is refused and nothing changes
    assert reused.status == 422, reused
    assert api.ok("GET", f"/v1/customers/{cid}")["program_status"] == "inactive"


def test_opt_out_retry_with_idempotency_key_changes_nothing_more(api: Api) -> None:
    cid = reach(api, "active")["customer_id"]
    headers = {"Idempotency-Key": "opt-out-1"}
    first = api("POST", f"/v1/customers/{cid}/opt-out", role="customer", sub=cid, headers=headers)
    second = api("POST", f"/v1/customers/{cid}/opt-out", role="customer", sub=cid, headers=headers)
    assert first.status == 200, first
    assert (second.status, second.body) == (first.status, first.body)
    assert len(history(api, cid)) == 3  # import, register, one disconnect


def test_sample_event_changes_a_status(aws: Aws) -> None:
    # Given the customer the sample event names, active at version 1
    from local.runtime import invoke
    from loyalty.domain.lifecycle import ProgramStatus
    from loyalty.repository import customers as repo
    from loyalty.services.customers import new_profile

    profile = {**new_profile("demo", {}, ProgramStatus.ACTIVE), "customer_id": "sample-customer-1"}
    repo.commit(
        repo.Write(after=profile, entry=repo.AuditEntry("register", {"role": "staff"}, None, "active"))
    )
    # When the handler receives the sample event (PUT inactive, expected_version 1)
    event = load_event("program_status/change_program_status.json")
    result = invoke(aws.specs["StatusChangeFunction"], event)
    # Then the customer is inactive at version 2
    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert (body["program_status"], body["version"]) == ("inactive", 2)
    assert table_items(aws)  # and it was stored


@pytest.mark.parametrize(
    ("start", "target"), [("active", "inactive"), ("imported", "pending"), ("inactive", "pending")]
)
@pytest.mark.parametrize(("with_version", "requests"), [(True, 1), (False, 2)])
def test_a_status_change_costs_one_request_with_a_version_two_without(
    api: Api, start: str, target: str, with_version: bool, requests: int
) -> None:
    # Given a customer in `start` and a counter of every AWS request made from now on
    from bench.common import RequestCounter
    from local.harness import reset_caches

    customer = reach(api, start)
    counter = RequestCounter()
    reset_caches()  # new clients, so the counter sees their calls
    try:
        # When staff set the target status
        extra = {"expected_version": customer["version"]} if with_version else {}
        response = put_status(api, customer["customer_id"], target, **extra)
        # Then the change took one transaction (plus one read without a version)
        assert response.status == 200, response
        assert counter.dynamodb() == requests, counter.calls
        assert counter.calls["dynamodb.TransactWriteItems"] == 1
    finally:
        counter.close()
