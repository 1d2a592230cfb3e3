"""Tiers through the handlers on moto (docs/design.md#tiers): the ladder, upgrades in the
purchase's own write, the retention check, manual tiers, re-evaluation jobs, webhooks."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from local.runtime import invoke
from local.webhook_receiver import Receiver
from tests.support import Api, Aws, table_items
from tests.support.points import purchase
from tests.support.tiers import LADDER, POINTS_SETTINGS
from tests.support.webhooks import Dispatch, subscribe


@pytest.fixture
def ladder(api: Api) -> None:
    """Points settings, three statuses (gold best, with a points multiplier) and the ladder."""
    api.ok("PUT", "/v1/settings/points", POINTS_SETTINGS, role="admin")
    for code, rank, modifiers in (
        ("gold", 1, {"tier_points_multiplier": 2}),
        ("silver", 2, {}),
        ("bronze", 3, {}),
    ):
        body = {
            "code": code,
            "name": code.title(),
            "rank": rank,
            "customer_facing": True,
            "modifiers": modifiers,
        }
        api.ok("POST", "/v1/status-definitions", body, role="admin")
    api.ok("PUT", "/v1/tiers", LADDER, role="admin")


def customer(api: Api, email: str = "tier@example.com") -> str:
    cid: str = api.ok("POST", "/v1/registrations", {"email": email})["customer_id"]
    return cid


def buy(api: Api, cid: str, external_id: str, eligible: float) -> dict[str, Any]:
    return dict(
        api.ok("POST", f"/v1/customers/{cid}/purchases", purchase(external_id, eligible), role="service")
    )


def tier(api: Api, cid: str) -> dict[str, Any]:
    return dict(api.ok("GET", f"/v1/customers/{cid}/tier"))


def tier_events(aws: Aws, cid: str) -> list[dict[str, Any]]:
    return [i for i in table_items(aws) if i["PK"].endswith(cid) and i["SK"].startswith("TIEREVT#")]


def later(days: float) -> str:
    from loyalty.domain import clock

    return clock.iso(clock.now() + timedelta(days=days))


# --- the ladder ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"window_months": 0}, "window_months"),
        ({"basis": "balance"}, "basis"),
        ({"retention": "fixed_dates"}, "fixed_dates"),
        ({"tiers": [{"code": "gold", "attain": 100, "maintain": 200}]}, "tiers[0]"),
        ({"tiers": [{"code": "platinum", "attain": 1, "maintain": 1}]}, "tiers[0].code"),
        (
            {
                "tiers": [
                    {"code": "gold", "attain": 10, "maintain": 5},
                    {"code": "silver", "attain": 20, "maintain": 6},
                ]
            },
            "tiers",
        ),
        ({"tiers": []}, "tiers"),
        ({"colour": "gold"}, "colour"),
    ],
)
def test_a_bad_ladder_is_422_naming_the_field_and_changes_nothing(
    api: Api, ladder: None, change: dict[str, Any], field: str
) -> None:
    before = api.ok("GET", "/v1/tiers")
    response = api("PUT", "/v1/tiers", {**LADDER, **change}, role="admin")
    assert response.status == 422, response
    assert field in [f["field"] for f in response.body["error"]["details"]["fields"]], response
    assert api.ok("GET", "/v1/tiers") == before


def test_the_ladder_reads_back_by_rank_and_tier_codes_are_not_ordinary_statuses(
    api: Api, ladder: None
) -> None:
    got = api.ok("GET", "/v1/tiers")
    assert [(t["code"], Decimal(str(t["attain"])), Decimal(str(t["maintain"]))) for t in got["tiers"]] == [
        ("bronze", 0, 0),
        ("silver", 500, 400),
        ("gold", 1000, 800),
    ]
    assert got["version"] == 1 and got["basis"] == "eligible_spend"
    cid = customer(api)
    # A tier is reached, never assigned or removed by hand, in bulk, or given a rule
    assigned = api("PUT", f"/v1/customers/{cid}/statuses/gold", {})
    assert (assigned.status, assigned.body["error"]["code"]) == (409, "tier_status")
    bulk = api("POST", "/v1/status-definitions/gold/assignments", {"action": "assign", "customer_ids": [cid]})
    assert bulk.status == 409
    rule = {"rule": {"attribute": "followers", "operator": "gt", "value": 1}}
    assert api("PATCH", "/v1/status-definitions/gold", rule, role="admin").status == 409
    assert api("DELETE", "/v1/status-definitions/gold", role="admin").status == 409
    # And a re-rank that would put a lower threshold above a higher one is refused
    order = {"codes": ["bronze", "silver", "gold"]}
    assert api("PUT", "/v1/status-definitions/order", order, role="admin").status == 409


def test_a_status_already_held_by_hand_cannot_become_a_tier(api: Api) -> None:
    api.ok("POST", "/v1/status-definitions", {"code": "vip", "name": "VIP", "rank": 1}, role="admin")
    cid = customer(api)
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {})
    body = {**LADDER, "tiers": [{"code": "vip", "attain": 100, "maintain": 50}]}
    refused = api("PUT", "/v1/tiers", body, role="admin")
    assert (refused.status, refused.body["error"]["code"]) == (409, "tier_status")
    assert api("PUT", "/v1/tiers", body, role="staff").status == 403


# --- upgrades --------------------------------------------------------------------------------------


def test_a_purchase_that_crosses_a_threshold_upgrades_in_its_own_write(
    api: Api, aws: Aws, ladder: None
) -> None:
    # Given a customer at 450 of eligible spend
    cid = customer(api)
    first = buy(api, cid, "pos-1", 450)
    assert first["tier"] == {"code": "bronze", "move": "upgraded"}  # bronze starts at 0
    # When a purchase takes them to 1,050
    crossed = buy(api, cid, "pos-2", 600)
    # Then the answer says gold, and the customer holds gold as their tier status
    assert crossed["tier"] == {"code": "gold", "move": "upgraded"}
    shown = api.ok("GET", f"/v1/customers/{cid}")
    assert shown["best_status"] == "gold" and [s["code"] for s in shown["statuses"]] == ["gold"]
    assert shown["tier"]["code"] == "gold" and Decimal(str(shown["tier"]["qualifying_value"])) == 1050
    assert shown["tier"]["next"] is None and shown["tier"]["retained_until"] > later(360)
    # And the gold multiplier applies from the next purchase, recorded on its ledger entry
    doubled = buy(api, cid, "pos-3", 10)
    assert doubled["points"] == 20
    assert doubled["entries"][0]["details"]["multiplier"] == {"factor": "2", "granted_by": "gold"}
    # And the history names the tier move, and one tier event per move was written
    history = api.ok("GET", f"/v1/customers/{cid}/history")["items"]
    moves = [
        (h["details"]["from_tier"], h["details"]["to_tier"]) for h in history if h["event"] == "tier_changed"
    ]
    assert moves == [("bronze", "gold"), (None, "bronze")]
    assert [(e.get("from_code"), e["to_code"]) for e in tier_events(aws, cid)] == [
        (None, "bronze"),
        ("bronze", "gold"),
    ]


def test_redemptions_never_count_and_a_return_lowers_the_value_without_downgrading(
    api: Api, ladder: None
) -> None:
    cid = customer(api)
    buy(api, cid, "pos-1", 600)
    assert tier(api, cid)["code"] == "silver"
    api.ok("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "rd", "points": 600, "reward": "tv"})
    assert Decimal(str(tier(api, cid)["qualifying_value"])) == 600
    returned = api.ok(
        "POST",
        f"/v1/customers/{cid}/purchases/pos-1/returns",
        {"external_id": "ret", "eligible_amount": 500},
        role="service",
    )
    assert returned["tier"] is None
    after = tier(api, cid)
    assert after["code"] == "silver" and Decimal(str(after["qualifying_value"])) == 100
    assert after["next"]["code"] == "gold" and Decimal(str(after["next"]["missing"])) == 900


def test_concurrent_purchases_that_both_cross_a_threshold_upgrade_once(
    api: Api, aws: Aws, ladder: None, serialised_moto: None
) -> None:
    from loyalty.domain.principal import Principal, Role
    from loyalty.schemas.points import Purchase
    from loyalty.services.points import commands

    cid = customer(api)
    buy(api, cid, "pos-0", 450)
    till = Principal("till-1", "biz-1", Role.SERVICE)
    start = threading.Barrier(2)
    answers: list[dict[str, Any] | None] = []

    def purchase(i: int) -> None:
        body = Purchase.model_validate(
            {
                "external_id": f"pos-{i + 1}",
                "occurred_at": "2026-11-30T10:00:00Z",
                "amount": 100,
                "eligible_amount": 100,
                "currency": "EUR",
            }
        )
        start.wait()
        answers.append(commands.earn(till, cid, body).tier)

    threads = [threading.Thread(target=purchase, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers, key=json.dumps) == sorted(
        [None, {"code": "silver", "move": "upgraded"}], key=json.dumps
    )
    assert [e["to_code"] for e in tier_events(aws, cid)] == ["bronze", "silver"]
    assert Decimal(str(tier(api, cid)["qualifying_value"])) == 650


# --- the retention check ---------------------------------------------------------------------------


def run_check(aws: Aws, now: str | None = None) -> dict[str, Any]:
    if now is None:
        return dict(invoke(aws.specs["StatusesFunction"], {"run": "tier_check"}))
    from loyalty.services.tiers import check

    return check.run(now=now).model_dump()


def test_the_check_retains_or_downgrades_once_when_retention_ends(api: Api, aws: Aws, ladder: None) -> None:
    # Given a gold customer who keeps spending, and one who stops after reaching gold
    keeps, stops = customer(api, "keeps@example.com"), customer(api, "stops@example.com")
    buy(api, keeps, "k-1", 1000)
    buy(api, stops, "s-1", 1000)
    # When the check runs before the retention ends / Then nobody is read or moved
    assert run_check(aws)["checked"] == 0
    # When it runs a year and a day later, after `keeps` bought 900 more in the new window
    from loyalty.domain import clock

    next_year = clock.iso(clock.now() + timedelta(days=366))
    purchase_at = clock.iso(clock.now() + timedelta(days=340))
    body = {
        "external_id": "k-2",
        "occurred_at": purchase_at,
        "amount": 900,
        "eligible_amount": 900,
        "currency": "EUR",
    }
    api.ok("POST", f"/v1/customers/{keeps}/purchases", body, role="service")
    report = run_check(aws, next_year)
    # Then `keeps` is retained (900 >= gold's 800 maintain) and `stops` goes one tier down
    assert (report["checked"], report["retained"], report["downgraded"]) == (2, 1, 1)
    assert report["profiles_read"] == 0  # the records' profile snapshots still held
    assert api.ok("GET", f"/v1/customers/{keeps}")["best_status"] == "gold"
    stopped = api.ok("GET", f"/v1/customers/{stops}")
    assert stopped["best_status"] == "silver" and [s["code"] for s in stopped["statuses"]] == ["silver"]
    history = api.ok("GET", f"/v1/customers/{stops}/history")["items"]
    assert history[0]["event"] == "tier_changed" and history[0]["details"]["to_tier"] == "silver"
    assert history[0]["version"] == stopped["version"]
    # And a second run the same day moves nobody again
    again = run_check(aws, next_year)
    assert (again["checked"], again["retained"], again["downgraded"]) == (0, 0, 0)
    assert [e["move"] for e in tier_events(aws, stops)] == ["upgraded", "downgraded"]


def test_a_profile_changed_since_the_record_saw_it_is_read_and_moved_right(
    api: Api, aws: Aws, ladder: None
) -> None:
    # Given a gold customer who then got an ordinary status and a new name
    api.ok("POST", "/v1/status-definitions", {"code": "vip", "name": "VIP", "rank": 4}, role="admin")
    cid = customer(api)
    buy(api, cid, "pos-1", 1000)
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {})
    api.ok("PATCH", f"/v1/customers/{cid}", {"first_name": "Renamed"})
    # When the check downgrades them
    report = run_check(aws, later(366))
    # Then it read the profile once, and the profile keeps the other status and the new name
    assert (report["downgraded"], report["profiles_read"]) == (1, 1)
    shown = api.ok("GET", f"/v1/customers/{cid}")
    assert [s["code"] for s in shown["statuses"]] == ["silver", "vip"] and shown["first_name"] == "Renamed"


# --- manual tiers ------------------------------------------------------------------------------------


def test_a_manual_tier_sets_or_floors_the_tier_until_its_date(api: Api, aws: Aws, ladder: None) -> None:
    cid = customer(api)
    buy(api, cid, "pos-1", 600)  # silver
    path = f"/v1/customers/{cid}/tier"
    # `floor` must be said: a manual tier never silently becomes a floor
    missing = api("PUT", path, {"code": "gold", "until": "2030-01-01T00:00:00Z"})
    assert missing.status == 422 and "floor" in str(missing.body)
    assert api("PUT", path, {"code": "vip", "until": "2030-01-01T00:00:00Z", "floor": True}).status == 422
    assert api("PUT", path, {"code": "gold", "until": "2020-01-01T00:00:00Z", "floor": True}).status == 422
    # A bronze manual tier that is not a floor puts the customer at bronze until its date
    capped = api.ok("PUT", path, {"code": "bronze", "until": later(30), "floor": False, "reason": "trial"})
    assert capped["code"] == "bronze" and capped["manual"]["floor"] is False
    assert api.ok("GET", f"/v1/customers/{cid}")["best_status"] == "bronze"
    # Ending it gives the computed silver back
    assert api.ok("DELETE", path)["code"] == "silver"
    assert api("DELETE", path).status == 404
    # A gold floor lifts them; when it ends, the check puts silver back
    api.ok("PUT", path, {"code": "gold", "until": later(10), "floor": True})
    assert tier(api, cid)["code"] == "gold"
    report = run_check(aws, later(11))
    assert report["downgraded"] == 1 and tier(api, cid)["code"] == "silver"
    reasons = [e["reason"] for e in tier_events(aws, cid)]
    assert reasons[-1] == "manual_ended"


# --- re-evaluation ------------------------------------------------------------------------------------


def test_changing_the_ladder_moves_nobody_until_a_job_does(api: Api, aws: Aws, ladder: None) -> None:
    # Given a silver customer (600) and a gold one (1,200)
    silver, gold = customer(api, "s@example.com"), customer(api, "g@example.com")
    buy(api, silver, "s-1", 600)
    buy(api, gold, "g-1", 1200)
    # When the ladder's thresholds rise
    raised = {
        **LADDER,
        "tiers": [
            {"code": "gold", "attain": 1500, "maintain": 1300},
            {"code": "bronze", "attain": 0, "maintain": 0},
            {"code": "silver", "attain": 700, "maintain": 650},
        ],
    }
    api.ok("PUT", "/v1/tiers", raised, role="admin")
    # Then nobody moved
    assert (tier(api, silver)["code"], tier(api, gold)["code"]) == ("silver", "gold")
    # And a dry run says who would, and changes nothing
    dry = api.ok("POST", "/v1/tiers/evaluations", {"dry_run": True}, role="admin")
    assert (dry["customers"], dry["downgrades"], dry["upgrades"], dry["unchanged"]) == (2, 2, 0, 0)
    assert {(m["customer_id"], m["to_code"]) for m in dry["moves"]} == {(silver, "bronze"), (gold, "silver")}
    assert (tier(api, silver)["code"], tier(api, gold)["code"]) == ("silver", "gold")
    # When the job runs (the queue's message through the function, as SQS would deliver it)
    started = api("POST", "/v1/tiers/evaluations", {"dry_run": False}, role="admin")
    assert started.status == 202 and started.body["job"]["kind"] == "tiers"
    job_id = started.body["job"]["job_id"]
    _drain_jobs(aws)
    # Then the customers moved, with progress on the job
    assert (tier(api, silver)["code"], tier(api, gold)["code"]) == ("bronze", "silver")
    job = api.ok("GET", f"/v1/tiers/evaluations/{job_id}", role="admin")
    assert (job["state"], job["processed"], job["changed"], job["failed"]) == ("completed", 2, 2, 0)
    assert api("GET", f"/v1/tiers/evaluations/{'0' * 32}", role="admin").status == 404


def _drain_jobs(aws: Aws) -> None:
    import boto3

    from local.events import sqs_event

    sqs = boto3.client("sqs")
    url = aws.refs["RuleEvaluationQueue"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        invoke(aws.specs["StatusesFunction"], sqs_event(messages, aws.refs["RuleEvaluationQueue.Arn"]))
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# --- reading, webhooks, exclusion -----------------------------------------------------------------------


def test_a_customer_reads_only_their_own_tier(api: Api, ladder: None) -> None:
    me, other = customer(api, "me@example.com"), customer(api, "other@example.com")
    buy(api, me, "pos-1", 600)
    mine = api.ok("GET", f"/v1/customers/{me}/tier", role="customer", sub=me)
    assert mine["code"] == "silver" and mine["manual"] is None
    assert api("GET", f"/v1/customers/{other}/tier", role="customer", sub=me).status == 404
    assert (
        api(
            "PUT",
            f"/v1/customers/{me}/tier",
            {"code": "gold", "until": later(5), "floor": True},
            role="customer",
            sub=me,
        ).status
        == 403
    )


def test_tier_events_reach_subscribers_signed(
    api: Api, aws: Aws, ladder: None, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    subscribe(api, receiver, events=["tier.upgraded", "tier.downgraded", "tier.retained"])
    keeps, stops = customer(api, "k@example.com"), customer(api, "s@example.com")
    buy(api, keeps, "k-1", 1000)
    buy(api, stops, "s-1", 600)
    from loyalty.domain import clock

    at = clock.iso(clock.now() + timedelta(days=340))
    body = {"external_id": "k-2", "occurred_at": at, "amount": 900, "eligible_amount": 900, "currency": "EUR"}
    api.ok("POST", f"/v1/customers/{keeps}/purchases", body, role="service")
    run_check(aws, later(366))
    _, result = dispatch.pump()
    assert result == {"batchItemFailures": []}
    got = sorted(
        (r.payload["type"], r.payload["data"]["customer_id"], r.payload["data"]["to_tier"])
        for r in receiver.received
    )
    assert got == sorted(
        [
            ("tier.upgraded", keeps, "gold"),
            ("tier.upgraded", stops, "silver"),
            ("tier.retained", keeps, "gold"),
            ("tier.downgraded", stops, "bronze"),
        ]
    )
    assert all(r.verified for r in receiver.received)


def test_exclusion_removes_the_tier_record_from_every_index(api: Api, aws: Aws, ladder: None) -> None:
    cid = customer(api)
    buy(api, cid, "pos-1", 600)
    api.ok("POST", f"/v1/customers/{cid}/exclusion", {"reason": "asked"})
    left = [i for i in table_items(aws) if i["PK"].endswith(cid) and i["SK"] == "TIER"]
    assert left == []
    assert run_check(aws, later(400))["checked"] == 0


def test_a_packed_cards_purchases_count_toward_its_new_owners_tier(api: Api, ladder: None) -> None:
    # Given a packed card whose temporary owner bought 700 before anyone registered it
    card = api.ok("POST", "/v1/card-batches", {"numbers": ["8800001"]}, role="admin")["cards"][0]
    buy(api, card["customer_id"], "till-1", 700)
    assert tier(api, card["customer_id"])["code"] == "silver"  # a `new` owner holds statuses too
    # When a customer registers with the card, then buys 300 more
    cid = api.ok("POST", "/v1/registrations", {"email": "card@example.com", "card_number": "8800001"})[
        "customer_id"
    ]
    assert Decimal(str(tier(api, cid)["qualifying_value"])) == 700
    assert api.ok("GET", f"/v1/customers/{card['customer_id']}")["program_status"] == "merged"
    upgraded = buy(api, cid, "pos-1", 300)
    # Then the card's 700 counted: 1,000 reaches gold
    assert upgraded["tier"] == {"code": "gold", "move": "upgraded"}
