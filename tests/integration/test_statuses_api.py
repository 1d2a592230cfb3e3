"""Ranked statuses through the real lambda_handler on moto: definitions, ranking, assignment
(one, bulk, rules on PATCH and in the background), entitlements, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import Api, Aws, load_event, table_items

VIP = {
    "code": "vip",
    "name": "VIP",
    "rank": 1,
    "customer_facing": True,
    "modifiers": {"discount_percent": 10},
}
STAFF = {
    "code": "staff",
    "name": "Staff",
    "rank": 2,
    "customer_facing": False,
    "modifiers": {"discount_percent": 30, "free_delivery": True},
}
INFLUENCER_RULE = {"attribute": "instagram_followers", "operator": "gt", "value": 10000}


def create_customer(api: Api, email: str, **fields: Any) -> dict[str, Any]:
    return api.ok("POST", "/v1/customers", {"email": email, **fields}, expect=201)


def define(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    return api.ok("POST", "/v1/status-definitions", body, role="admin", expect=201)


def drain_jobs(aws: Aws) -> int:
    """Deliver RuleEvaluationQueue messages to the statuses function until the queue is empty."""
    import boto3

    from local.events import sqs_event
    from local.runtime import invoke

    sqs = boto3.client("sqs")
    url, arn = aws.refs["RuleEvaluationQueue"], aws.refs["RuleEvaluationQueue.Arn"]
    delivered = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return delivered
        result = invoke(aws.specs["StatusesFunction"], sqs_event(messages, arn))
        assert result == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        delivered += 1


def codes(customer: dict[str, Any]) -> list[str]:
    return [s["code"] for s in customer["statuses"]]


def later(**delta: int) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- definitions -------------------------------------------------------------------------


def test_definitions_are_listed_by_rank_and_customers_see_only_customer_facing(api: Api) -> None:
    # Given two definitions created out of rank order
    define(api, STAFF)
    created = define(api, VIP)
    assert created["rank"] == 1 and created["modifiers"] == {"discount_percent": 10}
    # When staff list them / Then they come by rank
    listed = api.ok("GET", "/v1/status-definitions")
    assert [d["code"] for d in listed["items"]] == ["vip", "staff"]
    assert listed["next_cursor"] is None and listed["version"] == 2
    # And a customer sees only the customer-facing one
    seen = api.ok("GET", "/v1/status-definitions", role="customer", sub="c-1")
    assert [d["code"] for d in seen["items"]] == ["vip"]


def test_rank_defaults_to_after_the_last_one(api: Api) -> None:
    # Given VIP at rank 1 / When a definition omits its rank
    define(api, VIP)
    created = define(api, {"code": "gold", "name": "Gold"})
    # Then it takes the next rank
    assert created["rank"] == 2


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({**VIP, "name": "Again"}, "code", 409),
        ({**STAFF, "rank": 1}, "rank", 409),
        ({**STAFF, "code": "Has Space"}, "code", 422),
        ({**STAFF, "rank": 0}, "rank", 422),
        ({**STAFF, "modifiers": {"discount_percent": 120}}, "modifiers.discount_percent", 422),
        ({**STAFF, "modifiers": {"cashback": 1}}, "modifiers.cashback", 422),
        ({**STAFF, "rule": {"attribute": "age", "operator": "between", "value": 3}}, "rule.operator", 422),
        ({**STAFF, "rule": {"attribute": "age", "operator": "gt", "value": True}}, "rule.value", 422),
        (
            {**STAFF, "rule": {"all": [{"attribute": "a", "operator": "in", "value": 3}]}},
            "rule.all[0].value",
            422,
        ),
        ({**STAFF, "rule": {"attribute": "a"}}, "rule", 422),
        ({**STAFF, "extra": 1}, "extra", 422),
    ],
)
def test_bad_definitions_are_refused_naming_the_problem(
    api: Api, aws: Aws, body: dict[str, Any], field: str, status: int
) -> None:
    # Given VIP at rank 1
    define(api, VIP)
    before = table_items(aws)
    # When a bad definition is posted
    response = api("POST", "/v1/status-definitions", body, role="admin")
    # Then it is refused naming the field, and nothing changed
    assert response.status == status, response
    error = response.body["error"]
    named = [f["field"] for f in error["details"].get("fields", [])] + [error["details"].get("field")]
    assert field in named, response
    assert table_items(aws) == before


def test_staff_cannot_define_statuses(api: Api) -> None:
    # Given staff / When they post a definition / Then it is forbidden
    assert api("POST", "/v1/status-definitions", VIP, role="staff").status == 403


def test_reorder_is_one_change_and_refuses_incomplete_lists(api: Api) -> None:
    # Given three definitions
    define(api, VIP)
    define(api, STAFF)
    define(api, {"code": "gold", "name": "Gold"})
    # When the order is missing one, repeats one and names an unknown one
    bad = api("PUT", "/v1/status-definitions/order", {"codes": ["gold", "gold", "nope"]}, role="admin")
    # Then it is refused naming each problem, and ranks are unchanged
    assert bad.status == 422, bad
    problems = {f["message"] for f in bad.body["error"]["details"]["fields"]}
    assert problems == {"missing: staff, vip", "unknown: nope", "duplicated: gold"}
    # When the full order is given
    listed = api.ok("PUT", "/v1/status-definitions/order", {"codes": ["gold", "vip", "staff"]}, role="admin")
    # Then ranks follow it in one catalog version
    assert [(d["code"], d["rank"]) for d in listed["items"]] == [("gold", 1), ("vip", 2), ("staff", 3)]
    assert listed["version"] == 4


def test_patch_definition_changes_fields_and_refuses_a_taken_rank(api: Api) -> None:
    # Given VIP and Staff
    define(api, VIP)
    define(api, STAFF)
    # When VIP's name and one modifier change (null removes another)
    patched = api.ok(
        "PATCH",
        "/v1/status-definitions/vip",
        {"name": "Very Important", "modifiers": {"free_delivery": True, "discount_percent": None}},
        role="admin",
    )
    # Then the rest is kept
    assert patched["name"] == "Very Important" and patched["modifiers"] == {"free_delivery": True}
    # When staff's rank is set to VIP's / Then 409 names the holder
    taken = api("PATCH", "/v1/status-definitions/staff", {"rank": 1}, role="admin")
    assert taken.status == 409 and taken.body["error"]["details"]["code"] == "vip", taken
    # And an unknown code is 404
    assert api("PATCH", "/v1/status-definitions/nope", {"name": "x"}, role="admin").status == 404


# --- assignment by staff -----------------------------------------------------------------


def test_assign_and_remove_one_status_with_audit_and_holder_listing(api: Api, aws: Aws) -> None:
    # Given two statuses and a customer
    define(api, VIP)
    define(api, STAFF)
    cid = create_customer(api, "ann@example.com")["customer_id"]
    # When staff assign both
    api.ok("PUT", f"/v1/customers/{cid}/statuses/staff")
    customer = api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {"reason": "top spender"})
    # Then the profile lists them by rank with the best status
    assert codes(customer) == ["vip", "staff"] and customer["best_status"] == "vip"
    assert customer["version"] == 3
    # And the customer sees only the customer-facing one
    own = api.ok("GET", f"/v1/customers/{cid}", role="customer", sub=cid)
    assert codes(own) == ["vip"] and own["best_status"] == "vip"
    # And staff can list the holders of a status
    holders = api.ok("GET", "/v1/customers", query={"status_code": "vip"})
    assert [c["customer_id"] for c in holders["items"]] == [cid]
    # And history records the assignment without personal data
    history = api.ok("GET", f"/v1/customers/{cid}/history")["items"]
    assert history[0]["event"] == "status_assigned" and history[0]["details"]["code"] == "vip"
    assert history[0]["reason"] == "top spender"
    # When VIP is removed
    customer = api.ok("DELETE", f"/v1/customers/{cid}/statuses/vip")
    # Then staff is the best status and the holder list is empty
    assert codes(customer) == ["staff"] and customer["best_status"] == "staff"
    assert api.ok("GET", "/v1/customers", query={"status_code": "vip"})["items"] == []
    # And removing it again is a 404 saying why
    again = api("DELETE", f"/v1/customers/{cid}/statuses/vip")
    assert again.status == 404 and "does not hold" in again.body["error"]["message"]


def test_unknown_status_or_customer_is_refused_and_nothing_changes(api: Api, aws: Aws) -> None:
    # Given a customer of biz-1 and VIP defined
    define(api, VIP)
    cid = create_customer(api, "ann@example.com")["customer_id"]
    before = table_items(aws)
    # When an undefined status, another business's customer, a bad code or a past expiry is sent
    unknown = api("PUT", f"/v1/customers/{cid}/statuses/gold")
    other = api("PUT", f"/v1/customers/{cid}/statuses/vip", business="biz-2")
    bad_code = api("PUT", f"/v1/customers/{cid}/statuses/BAD CODE")
    past = api("PUT", f"/v1/customers/{cid}/statuses/vip", {"expires_at": "2001-01-01T00:00:00Z"})
    by_customer = api("PUT", f"/v1/customers/{cid}/statuses/vip", role="customer", sub=cid)
    # Then each is refused with the right status and nothing was written
    assert unknown.status == 404 and unknown.body["error"]["details"]["code"] == "gold"
    assert other.status == 404
    assert bad_code.status == 422
    assert past.status == 422 and past.body["error"]["details"]["fields"][0]["field"] == "expires_at"
    assert by_customer.status == 403
    assert table_items(aws) == before


def test_entitlements_best_status_wins_and_others_fill_gaps(api: Api) -> None:
    # Given VIP (10% off) above Staff (30% off, free delivery), both assigned
    define(api, VIP)
    define(api, STAFF)
    cid = create_customer(api, "ann@example.com")["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip")
    api.ok("PUT", f"/v1/customers/{cid}/statuses/staff")
    # When staff read the entitlements
    got = api.ok("GET", f"/v1/customers/{cid}/entitlements")
    # Then the discount comes from VIP and free delivery is filled from Staff
    assert got["best_status"] == "vip"
    assert got["modifiers"] == {"discount_percent": 10, "free_delivery": True}
    assert {e["modifier"]: e["granted_by"] for e in got["entitlements"]} == {
        "discount_percent": "vip",
        "free_delivery": "staff",
    }
    # And the customer gets the same modifiers without learning the internal status
    own = api.ok("GET", f"/v1/customers/{cid}/entitlements", role="customer", sub=cid)
    assert own["modifiers"] == got["modifiers"]
    assert {e["modifier"]: e["granted_by"] for e in own["entitlements"]}["free_delivery"] is None
    assert [s["code"] for s in own["statuses"]] == ["vip"]
    # And another customer cannot read them
    assert api("GET", f"/v1/customers/{cid}/entitlements", role="customer", sub="someone").status == 404


# --- bulk --------------------------------------------------------------------------------


def test_bulk_assign_and_remove_report_per_item_failures(api: Api) -> None:
    # Given VIP and three customers, one already holding VIP
    define(api, VIP)
    ids = [create_customer(api, f"c{i}@example.com")["customer_id"] for i in range(3)]
    api.ok("PUT", f"/v1/customers/{ids[0]}/statuses/vip")
    # When staff bulk-assign by ids and e-mails, with unknown ones mixed in
    report = api.ok(
        "POST",
        "/v1/status-definitions/vip/assignments",
        {
            "action": "assign",
            "customer_ids": [ids[0], ids[1], "missing-id"],
            "emails": ["C2@example.com", "nobody@example.com", "not-an-email"],
        },
    )
    # Then two changed, one was already so, and each failure is named
    assert (report["changed"], report["unchanged"], report["failed"], report["requested"]) == (2, 1, 3, 6)
    failures = {(e["customer_id"], e["email"]) for e in report["errors"]}
    assert failures == {("missing-id", None), (None, "nobody@example.com"), (None, "not-an-email")}
    holders = api.ok("GET", "/v1/customers", query={"status_code": "vip"})["items"]
    assert sorted(c["customer_id"] for c in holders) == sorted(ids)
    # When they bulk-remove two of them
    removed = api.ok(
        "POST", "/v1/status-definitions/vip/assignments", {"action": "remove", "customer_ids": ids[:2]}
    )
    # Then only the third still holds VIP
    assert removed["changed"] == 2 and removed["failed"] == 0
    assert [
        c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"status_code": "vip"})["items"]
    ] == [ids[2]]


def test_bulk_refuses_unknown_status_and_oversized_requests(api: Api) -> None:
    # Given VIP / When bulk targets an unknown status or too many customers
    define(api, VIP)
    unknown = api(
        "POST", "/v1/status-definitions/gold/assignments", {"action": "assign", "customer_ids": ["x"]}
    )
    too_many = api(
        "POST",
        "/v1/status-definitions/vip/assignments",
        {"action": "assign", "customer_ids": [f"c{i}" for i in range(6000)], "emails": ["a@b.co"] * 5000},
    )
    empty = api("POST", "/v1/status-definitions/vip/assignments", {"action": "assign"})
    # Then they are refused
    assert unknown.status == 404
    assert too_many.status == 422 and empty.status == 422


# --- rules -------------------------------------------------------------------------------


def test_patch_reevaluates_rules_and_never_removes_a_manual_status(api: Api) -> None:
    # Given an Influencer rule and two customers, one made influencer by hand
    define(api, {"code": "influencer", "name": "Influencer", "rank": 5, "rule": INFLUENCER_RULE})
    auto = create_customer(api, "auto@example.com")["customer_id"]
    manual = create_customer(api, "manual@example.com")["customer_id"]
    api.ok("PUT", f"/v1/customers/{manual}/statuses/influencer")
    # When both get many followers
    gained = api.ok("PATCH", f"/v1/customers/{auto}", {"attributes": {"instagram_followers": 20000}})
    api.ok("PATCH", f"/v1/customers/{manual}", {"attributes": {"instagram_followers": 20000}})
    # Then the rule assigns it in the same change, recorded in the audit event
    assert codes(gained) == ["influencer"]
    event = api.ok("GET", f"/v1/customers/{auto}/history")["items"][0]
    assert event["details"]["statuses_added"] == ["influencer"]
    # When both lose their followers
    lost = api.ok("PATCH", f"/v1/customers/{auto}", {"attributes": {"instagram_followers": 10}})
    kept = api.ok("PATCH", f"/v1/customers/{manual}", {"attributes": {"instagram_followers": 10}})
    # Then the rule status goes, and the manual one stays
    assert codes(lost) == [] and lost["best_status"] is None
    assert codes(kept) == ["influencer"]
    assert (
        api.ok("GET", "/v1/customers", query={"status_code": "influencer"})["items"][0]["customer_id"]
        == manual
    )


def test_rule_change_reevaluates_every_customer_in_the_background(api: Api, aws: Aws) -> None:
    # Given customers with follower counts, and Influencer defined without a rule
    big = [
        create_customer(api, f"big{i}@example.com", attributes={"instagram_followers": 50000})
        for i in range(3)
    ]
    small = create_customer(api, "small@example.com", attributes={"instagram_followers": 5})
    define(api, {"code": "influencer", "name": "Influencer", "rank": 1})
    # When the admin adds the rule
    patched = api.ok("PATCH", "/v1/status-definitions/influencer", {"rule": INFLUENCER_RULE}, role="admin")
    # Then a job is queued and its progress is on the definition
    assert patched["job"]["kind"] == "evaluate" and patched["job"]["state"] == "queued"
    # When the queue is worked
    assert drain_jobs(aws) >= 1
    # Then the matching customers hold it, the other does not, and the job reports its counts
    for customer in big:
        assert codes(api.ok("GET", f"/v1/customers/{customer['customer_id']}")) == ["influencer"]
    assert codes(api.ok("GET", f"/v1/customers/{small['customer_id']}")) == []
    job = api.ok("GET", "/v1/status-definitions")["items"][0]["job"]
    assert (job["state"], job["processed"], job["changed"], job["failed"]) == ("completed", 4, 3, 0)
    # When the rule is removed / Then its assignments go in the background too
    api.ok("PATCH", "/v1/status-definitions/influencer", {"rule": None}, role="admin")
    drain_jobs(aws)
    assert api.ok("GET", "/v1/customers", query={"status_code": "influencer"})["items"] == []


def test_reranking_rewrites_holders_whose_order_changed(api: Api, aws: Aws) -> None:
    # Given a customer holding VIP (1) and Staff (2)
    define(api, VIP)
    define(api, STAFF)
    cid = create_customer(api, "ann@example.com")["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip")
    version = api.ok("PUT", f"/v1/customers/{cid}/statuses/staff")["version"]
    # When the ranks are swapped and the background job runs
    api.ok("PUT", "/v1/status-definitions/order", {"codes": ["staff", "vip"]}, role="admin")
    drain_jobs(aws)
    # Then the profile item was rewritten (so the stream carries the new best status) with audit
    profile = next(i for i in table_items(aws) if i.get("entity") == "customer" and i["customer_id"] == cid)
    assert profile["best_status"] == "staff" and profile["status_order"] == ["staff", "vip"]
    customer = api.ok("GET", f"/v1/customers/{cid}")
    assert customer["version"] == version + 1 and customer["best_status"] == "staff"
    assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["event"] == "statuses_reranked"


def test_deleting_a_definition_removes_its_assignments_in_the_background(api: Api, aws: Aws) -> None:
    # Given two holders of VIP
    define(api, VIP)
    ids = [create_customer(api, f"c{i}@example.com")["customer_id"] for i in range(2)]
    for cid in ids:
        api.ok("PUT", f"/v1/customers/{cid}/statuses/vip")
    # When VIP is deleted
    job = api.ok("DELETE", "/v1/status-definitions/vip", role="admin", expect=202)
    # Then it is gone from the catalog at once, and re-creating it waits for the removal
    listed = api.ok("GET", "/v1/status-definitions")
    assert listed["items"] == [] and listed["deleting"] == ["vip"]
    assert api("POST", "/v1/status-definitions", VIP, role="admin").status == 409
    # When the job runs
    drain_jobs(aws)
    # Then no assignment item or profile entry is left, and the job completed
    assert not [i for i in table_items(aws) if i.get("entity") == "status_assignment"]
    for cid in ids:
        assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["event"] == "status_removed"
    listed = api.ok("GET", "/v1/status-definitions")
    assert listed["deleting"] == []
    done = {j["job_id"]: j for j in listed["jobs"]}[job["job_id"]]
    assert (done["state"], done["changed"]) == ("completed", 2)
    define(api, VIP)


# --- expiry ------------------------------------------------------------------------------


def test_expiry_schedule_removes_passed_assignments_only(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one assignment expiring in an hour and one without expiry
    define(api, VIP)
    define(api, STAFF)
    cid = create_customer(api, "ann@example.com")["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {"expires_at": later(hours=1)})
    api.ok("PUT", f"/v1/customers/{cid}/statuses/staff")
    from local.runtime import invoke

    event = load_event("ranked_statuses/status_expiry.json")
    # When the schedule runs now / Then nothing is due
    assert invoke(aws.specs["StatusesFunction"], event)["customers_changed"] == 0
    # When it runs two hours later
    from loyalty.domain import clock

    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(hours=2))
    result = invoke(aws.specs["StatusesFunction"], event)
    # Then the expired assignment is removed with an audit event, and the other stays
    assert result == {"customers_changed": 1, "failed": 0}
    customer = api.ok("GET", f"/v1/customers/{cid}")
    assert codes(customer) == ["staff"]
    assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["event"] == "status_expired"
    assert not [i for i in table_items(aws) if i.get("GSI2PK") == "STATUS#EXPIRY"]


def test_sample_job_event_is_accepted(aws: Aws) -> None:
    # Given the sample SQS event (its job does not exist in a fresh table)
    from local.runtime import invoke

    # When the handler receives it / Then it reports no failures
    assert invoke(aws.specs["StatusesFunction"], load_event("ranked_statuses/rule_evaluation.json")) == {
        "batchItemFailures": []
    }


def test_a_job_that_runs_out_of_time_requeues_itself_and_reports_progress(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given five matching customers, pages of two, and never enough time for a second page
    from loyalty.services.ranked_statuses import jobs

    monkeypatch.setattr(jobs, "PAGE_SIZE", 2)
    monkeypatch.setattr(jobs, "STEP_RESERVE_MS", 10**9)
    ids = [
        create_customer(api, f"c{i}@example.com", attributes={"instagram_followers": 20000})["customer_id"]
        for i in range(5)
    ]
    # When a rule is defined and the queue is worked
    define(api, {"code": "influencer", "name": "Influencer", "rank": 1, "rule": INFLUENCER_RULE})
    steps = drain_jobs(aws)
    # Then the walk took several steps (3 pages of imported customers + the empty program statuses)
    assert steps >= 3
    job = api.ok("GET", "/v1/status-definitions")["items"][0]["job"]
    assert (job["state"], job["processed"], job["changed"]) == ("completed", 5, 5)
    assert all(codes(api.ok("GET", f"/v1/customers/{cid}")) == ["influencer"] for cid in ids)


def test_listing_holders_of_an_unknown_status_is_refused(api: Api) -> None:
    # Given no definition named gold / When staff list its holders / Then 404 names it
    response = api("GET", "/v1/customers", query={"status_code": "gold"})
    assert response.status == 404 and response.body["error"]["details"]["field"] == "status_code"


def test_sample_http_event_creates_a_definition_and_queues_its_evaluation(aws: Aws) -> None:
    # Given the sample API event shipped for `sam local invoke -e`
    import json

    from local.runtime import invoke

    # When the handler receives it
    result = invoke(aws.specs["StatusesFunction"], load_event("ranked_statuses/create_definition.json"))
    # Then the definition is created with its rule, and an evaluation job is queued
    assert result["statusCode"] == 201, result
    body = json.loads(result["body"])
    assert body["code"] == "influencer" and body["job"]["kind"] == "evaluate"
    assert drain_jobs(aws) == 1


def test_many_customers_are_written_in_groups_and_stale_ones_are_retried(api: Api, aws: Aws) -> None:
    # Given 40 customers read once, then one of them changed by someone else
    from loyalty.repository import customers as customers_repo
    from loyalty.repository import ranked_statuses as statuses_repo
    from loyalty.services.ranked_statuses import assignment

    define(api, VIP)
    ids = [create_customer(api, f"c{i}@example.com")["customer_id"] for i in range(40)]
    stale = list(customers_repo.get_profiles("biz-1", ids).values())
    api.ok("PATCH", f"/v1/customers/{ids[7]}", {"first_name": "Moved"})
    definitions = statuses_repo.get_catalog("biz-1")["definitions"]
    actor = {"sub": "staff-user", "role": "staff"}

    # When VIP is assigned to all of them from the stale reads
    outcome = assignment.rewrite_profiles(
        "biz-1", stale, lambda p: assignment.plan_assign(p, "vip", definitions, actor, None, None)
    )
    # Then every customer got it (the stale one after a fresh read), none failed
    assert (len(outcome.changed), outcome.failed) == (40, {})
    holders = api.ok("GET", "/v1/customers", query={"status_code": "vip", "limit": 100})["items"]
    assert len(holders) == 40
    moved = api.ok("GET", f"/v1/customers/{ids[7]}")
    assert moved["first_name"] == "Moved" and codes(moved) == ["vip"]
