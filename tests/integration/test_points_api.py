"""The points routes through the points function on moto (docs/design.md#points-ledger)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support import Api, Aws, table_items
from tests.support.points import purchase

SETTINGS = {
    "points_per_unit": 1,
    "rounding": "down",
    "pending_days": 0,
    "expiry": {"policy": "months", "value": 12},
    "return_policy": "allow_debt",
    "reminder_days": [30, 7],
    "time_zone": "Europe/Paris",
}


def active_customer(api: Api, email: str = "pts@example.com") -> str:
    cid: str = api.ok("POST", "/v1/registrations", {"email": email})["customer_id"]
    return cid


def earn(api: Api, cid: str, external_id: str, eligible: float, **kw: Any) -> Any:
    return api.ok(
        "POST", f"/v1/customers/{cid}/purchases", purchase(external_id, eligible), role="service", **kw
    )


def balance(api: Api, cid: str) -> dict[str, Any]:
    return dict(api.ok("GET", f"/v1/customers/{cid}/balance"))


@pytest.fixture
def configured(api: Api) -> None:
    api.ok("PUT", "/v1/settings/points", SETTINGS, role="admin")


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points_per_unit": 0}, "points_per_unit"),
        ({"rounding": "up"}, "rounding"),
        ({"pending_days": 400}, "pending_days"),
        ({"expiry": {"policy": "days"}}, "expiry"),
        ({"expiry": {"policy": "weekly", "value": 1}}, "expiry.policy"),
        ({"return_policy": "unlimited"}, "return_policy"),
        ({"reminder_days": [7, 7]}, "reminder_days"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_settings_out_of_range_are_422_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    answer = api("PUT", "/v1/settings/points", {**SETTINGS, **change}, role="admin")
    assert answer.status == 422, answer
    assert any(f["field"].startswith(field) for f in answer.body["error"]["details"]["fields"]), answer


def test_settings_round_trip_and_are_for_admins(api: Api) -> None:
    stored = api.ok("PUT", "/v1/settings/points", SETTINGS, role="admin")
    assert stored["expiry"] == {"policy": "months", "value": 12, "period": "year"}
    assert api.ok("GET", "/v1/settings/points")["time_zone"] == "Europe/Paris"
    assert api("PUT", "/v1/settings/points", SETTINGS, role="staff").status == 403


# --- earning ---------------------------------------------------------------------------------------


def test_earning_makes_a_lot_that_expires_at_the_end_of_a_local_day(api: Api, configured: None) -> None:
    cid = active_customer(api)
    answer = api("POST", f"/v1/customers/{cid}/purchases", purchase("pos-1", 42.9), role="service")
    assert answer.status == 201, answer
    assert answer.body["points"] == 42 and answer.body["balance"]["available"] == 42
    (entry,) = answer.body["entries"]
    assert (entry["type"], entry["points"], entry["balance_after"], entry["external_id"]) == (
        "earn",
        42,
        42,
        "pos-1",
    )
    lots = api.ok("GET", f"/v1/customers/{cid}/lots")["items"]
    assert [(x["remaining"], x["state"]) for x in lots] == [(42, "available")]
    # A year on, at the end of that day in Paris (23:59:59.999999 local is 22:59:59.999999 UTC in winter)
    assert lots[0]["expires_at"].endswith("T22:59:59.999999Z")
    assert api.ok("GET", f"/v1/customers/{cid}")["balance"] == 42


def test_a_retry_answers_the_first_answer_and_another_body_is_a_duplicate(api: Api, configured: None) -> None:
    cid = active_customer(api)
    first = earn(api, cid, "pos-1", 10)
    again = api("POST", f"/v1/customers/{cid}/purchases", purchase("pos-1", 10), role="service")
    assert again.status == 200 and again.body["replayed"] is True
    assert again.body["entries"] == first["entries"]
    assert balance(api, cid)["available"] == 10
    other = api("POST", f"/v1/customers/{cid}/purchases", purchase("pos-1", 99), role="service")
    assert (other.status, other.body["error"]["code"]) == (409, "duplicate")
    assert other.body["error"]["details"]["field"] == "external_id"


def test_the_program_status_decides_who_earns(api: Api, aws: Aws, configured: None) -> None:
    imported = api.ok("POST", "/v1/customers", {"email": "imp@example.com"})["customer_id"]
    before = table_items(aws)
    refused = api("POST", f"/v1/customers/{imported}/purchases", purchase("pos-9", 10), role="service")
    assert (refused.status, refused.body["error"]["code"]) == (409, "not_eligible")
    assert table_items(aws) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (purchase("p", -1), "eligible_amount"),
        ({**purchase("p", 10), "amount": 0}, "amount"),
        ({**purchase("p", 10), "amount": 5}, "eligible_amount"),
        ({**purchase("p", 10), "occurred_at": "2026-11-30T10:00:00"}, "occurred_at"),
        ({**purchase("p", 10), "currency": "euro"}, "currency"),
        ({**purchase("p", 10), "external_id": "has space"}, "external_id"),
    ],
)
def test_bad_purchases_are_422_and_write_nothing(
    api: Api, aws: Aws, configured: None, body: dict, field: str
) -> None:
    cid = active_customer(api)
    before = table_items(aws)
    answer = api("POST", f"/v1/customers/{cid}/purchases", body, role="service")
    assert answer.status == 422, answer
    assert field in str(answer.body["error"]), answer
    assert table_items(aws) == before


def test_the_best_ranked_status_multiplies_and_the_entry_says_so(api: Api, configured: None) -> None:
    cid = active_customer(api)
    api.ok(
        "POST",
        "/v1/status-definitions",
        {"code": "vip", "name": "VIP", "rank": 1, "modifiers": {"tier_points_multiplier": 2}},
        role="admin",
    )
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {})
    answer = earn(api, cid, "pos-1", 10)
    assert answer["points"] == 20
    assert answer["entries"][0]["details"]["multiplier"] == {"factor": "2", "granted_by": "vip"}


def test_a_card_earns_for_its_holder_and_a_blocked_card_refuses(api: Api, configured: None) -> None:
    packed = api.ok("POST", "/v1/card-batches", {"numbers": ["5500001"]}, role="admin")["cards"][0]
    # An issued card earns for its `new` virtual owner
    first = api.ok("POST", "/v1/cards/5500001/purchases", purchase("till-1", 15), role="service")
    assert first["customer_id"] == packed["customer_id"] and first["points"] == 15
    api.ok("PATCH", "/v1/cards/5500001", {"blocked": True})
    refused = api("POST", "/v1/cards/5500001/purchases", purchase("till-2", 15), role="service")
    assert (refused.status, refused.body["error"]["code"]) == (409, "card_blocked")


# --- returns -----------------------------------------------------------------------------------------


def test_partial_returns_take_back_exactly_what_was_earned(api: Api, configured: None) -> None:
    cid = active_customer(api)
    earn(api, cid, "pos-1", 100)  # 100 points for 100.00
    path = f"/v1/customers/{cid}/purchases/pos-1/returns"
    taken = [
        -api.ok("POST", path, {"external_id": f"ret-{i}", "eligible_amount": a}, role="service")["points"]
        for i, a in enumerate(("33.33", "33.33", "33.34"))
    ]
    assert sum(taken) == 100 and balance(api, cid)["available"] == 0
    beyond = api("POST", path, {"external_id": "ret-9", "eligible_amount": 1}, role="service")
    assert beyond.status == 422 and "eligible_amount" in str(beyond.body["error"])
    unknown = api(
        "POST",
        f"/v1/customers/{cid}/purchases/nope/returns",
        {"external_id": "ret-x", "eligible_amount": 1},
        role="service",
    )
    assert unknown.status == 404


def test_a_return_after_spending_becomes_debt_that_the_next_purchase_pays(api: Api, configured: None) -> None:
    cid = active_customer(api)
    earn(api, cid, "pos-1", 50)
    api.ok("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "rd-1", "points": 40, "reward": "mug"})
    back = api.ok(
        "POST",
        f"/v1/customers/{cid}/purchases/pos-1/returns",
        {"external_id": "ret-1", "eligible_amount": 50},
        role="service",
    )
    assert [(e["type"], e["points"]) for e in back["entries"]] == [("earn_reversal", -10), ("debt", -40)]
    assert balance(api, cid)["debt"] == 40
    paid = earn(api, cid, "pos-2", 100)
    assert [e["type"] for e in paid["entries"]] == ["earn", "debt_settle"]
    assert (balance(api, cid)["debt"], balance(api, cid)["available"]) == (0, 60)


# --- redemptions ---------------------------------------------------------------------------------------


def test_hold_then_capture_or_void_and_reverse_restore_lots(api: Api, configured: None) -> None:
    cid = active_customer(api)
    earn(api, cid, "pos-1", 30)
    base = f"/v1/customers/{cid}/redemptions"
    held = api.ok("POST", base, {"external_id": "h1", "points": 10, "reward": "cake", "hold": True})
    assert (
        held["state"] == "held" and balance(api, cid)["held"] == 10 and balance(api, cid)["available"] == 20
    )
    assert api.ok("POST", f"{base}/h1/capture")["state"] == "captured"
    assert (balance(api, cid)["held"], balance(api, cid)["lifetime_redeemed"]) == (0, 10)
    assert api("POST", f"{base}/h1/void").status == 409  # a captured redemption is reversed, not voided
    api.ok("POST", base, {"external_id": "h2", "points": 5, "reward": "tea", "hold": True})
    assert api.ok("POST", f"{base}/h2/void")["state"] == "voided"
    assert balance(api, cid)["available"] == 20
    reversed_ = api.ok("POST", f"{base}/h1/reversal")
    assert reversed_["entries"][-1]["type"] == "redeem_reversal"
    assert (balance(api, cid)["available"], balance(api, cid)["lifetime_redeemed"]) == (30, 0)
    assert api.ok("POST", f"{base}/h1/reversal")["replayed"] is True  # a retry changes nothing


def test_redeeming_more_than_available_or_when_not_allowed_is_refused(
    api: Api, aws: Aws, configured: None
) -> None:
    cid = active_customer(api)
    earn(api, cid, "pos-1", 10)
    before = table_items(aws)
    over = api("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "r1", "points": 11, "reward": "x"})
    assert (over.status, over.body["error"]["code"]) == (409, "insufficient_points")
    assert table_items(aws) == before
    api.ok("POST", f"/v1/customers/{cid}/opt-out", {})
    inactive = api(
        "POST", f"/v1/customers/{cid}/redemptions", {"external_id": "r2", "points": 1, "reward": "x"}
    )
    assert (inactive.status, inactive.body["error"]["code"]) == (409, "not_eligible")
    zero = api("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "r3", "points": 0, "reward": "x"})
    assert zero.status == 422


def test_fifty_concurrent_redemptions_against_ten_spend_exactly_ten(
    api: Api, configured: None, serialised_moto: None
) -> None:
    """Each racer is a Lambda container of its own: the use case runs in 50 threads at once
    (one Powertools resolver is not shared between concurrent requests, as in Lambda)."""
    from loyalty.domain.errors import DomainError
    from loyalty.domain.principal import Principal, Role
    from loyalty.schemas.points import Redemption
    from loyalty.services.points import commands

    # Given a balance that covers 10 redemptions of 1 point
    cid = active_customer(api)
    earn(api, cid, "pos-1", 10)
    till = Principal("till-1", "biz-1", Role.SERVICE)
    start = threading.Barrier(50)

    def redeem(i: int) -> str:
        start.wait()
        try:
            commands.redeem(till, cid, Redemption(external_id=f"r{i}", points=1, reward="x"))
        except DomainError as refused:
            return refused.code
        return "redeemed"

    # When 50 redemptions race
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(redeem, range(50)))
    # Then exactly 10 succeed, the rest are insufficient_points, and the balance is 0, not below
    assert answers.count("redeemed") == 10, answers
    assert answers.count("insufficient_points") == 40, answers
    final = balance(api, cid)
    assert (final["available"], final["debt"], final["lifetime_redeemed"]) == (0, 0, 10)
    ledger = api.ok("GET", f"/v1/customers/{cid}/ledger", query={"limit": 100})["items"]
    assert [e["balance_after"] for e in reversed(ledger)] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


# --- adjustments, ledger, lots ---------------------------------------------------------------------------


def test_adjustments_are_for_admins_and_carry_a_reason(api: Api, configured: None) -> None:
    cid = active_customer(api)
    body = {"external_id": "adj-1", "points": 25, "reason": "goodwill", "expires_at": "2027-01-15T00:00:00Z"}
    assert api("POST", f"/v1/customers/{cid}/point-adjustments", body, role="staff").status == 403
    made = api.ok("POST", f"/v1/customers/{cid}/point-adjustments", body, role="admin")
    assert made["entries"][0]["details"]["reason"] == "goodwill"
    (lot,) = api.ok("GET", f"/v1/customers/{cid}/lots")["items"]
    assert lot["expires_at"] == "2027-01-15T22:59:59.999999Z"  # end of 15 January in Paris
    minus = {"external_id": "adj-2", "points": -30, "reason": "correction"}
    assert api("POST", f"/v1/customers/{cid}/point-adjustments", minus, role="admin").status == 409


def test_the_ledger_pages_newest_first_and_a_customer_reads_only_their_own(
    api: Api, configured: None
) -> None:
    cid = active_customer(api, "own@example.com")
    other = active_customer(api, "other@example.com")
    for i in range(5):
        earn(api, cid, f"pos-{i}", 1)
    first = api.ok("GET", f"/v1/customers/{cid}/ledger", query={"limit": 2}, role="customer", sub=cid)
    second = api.ok(
        "GET",
        f"/v1/customers/{cid}/ledger",
        query={"limit": 2, "cursor": first["next_cursor"]},
        role="customer",
        sub=cid,
    )
    assert [e["external_id"] for e in first["items"] + second["items"]] == [
        "pos-4",
        "pos-3",
        "pos-2",
        "pos-1",
    ]
    assert api("GET", f"/v1/customers/{other}/ledger", role="customer", sub=cid).status == 404
    assert api("GET", f"/v1/customers/{other}/balance", role="customer", sub=cid).status == 404
