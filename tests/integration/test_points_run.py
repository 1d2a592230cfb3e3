"""The scheduled points run, merges and exclusion moving lots, and the points webhooks, on moto
(docs/design.md#points-ledger). Time is moved by shifting the points services' clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from local.runtime import invoke
from local.webhook_receiver import Receiver
from tests.support import Api, Aws, load_event
from tests.support.points import purchase
from tests.support.webhooks import Dispatch, subscribe

ACCOUNT, REGION = "123456789012", "us-east-1"
SETTINGS = {
    "points_per_unit": 1,
    "rounding": "down",
    "pending_days": 0,
    "expiry": {"policy": "days", "value": 30},
    "return_policy": "allow_debt",
    "reminder_days": [7, 1],
    "time_zone": "Europe/Paris",
}


@pytest.fixture
def configured(api: Api) -> None:
    api.ok("PUT", "/v1/settings/points", SETTINGS, role="admin")


def shift_clock(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    """Move the points services' clock forward, as if `days` had passed."""
    from loyalty.domain import clock
    from loyalty.services.points import commands, reads, run

    real = clock.now
    for module in (commands, reads, run):
        monkeypatch.setattr(module, "now_iso", lambda: clock.iso(real() + timedelta(days=days)))


def sent() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def run_points(aws: Aws) -> dict[str, Any]:
    """The schedule's own event through the points function's handler."""
    return dict(invoke(aws.specs["PointsFunction"], load_event("points/scheduled_run.json")))


def customer(api: Api, email: str, consent: bool = True) -> str:
    body = {"email": email, "marketing_consent": consent}
    cid: str = api.ok("POST", "/v1/registrations", body)["customer_id"]
    return cid


def earn(api: Api, cid: str, external_id: str, points: int) -> dict[str, Any]:
    return dict(
        api.ok("POST", f"/v1/customers/{cid}/purchases", purchase(external_id, points), role="service")
    )


def balance(api: Api, cid: str) -> dict[str, Any]:
    return dict(api.ok("GET", f"/v1/customers/{cid}/balance"))


def ledger_types(api: Api, cid: str) -> list[str]:
    return [e["type"] for e in api.ok("GET", f"/v1/customers/{cid}/ledger")["items"]]


# --- the scheduled run -------------------------------------------------------------------------


def test_sample_scheduled_event_with_nothing_due_reads_nothing(aws: Aws) -> None:
    assert run_points(aws) == {
        "wallets": 0,
        "expired_lots": 0,
        "activated_lots": 0,
        "reminders_sent": 0,
        "reminders_skipped": 0,
        "out_of_time": False,
    }


def test_the_run_expires_lots_after_their_local_day_and_only_then(
    api: Api, aws: Aws, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 40 points earned today, expiring at the end of the local day 30 days on
    cid = customer(api, "exp@example.com", consent=False)
    earn(api, cid, "pos-1", 40)
    (lot,) = api.ok("GET", f"/v1/customers/{cid}/lots")["items"]
    # When the run comes on the 29th day / Then nothing expires
    shift_clock(monkeypatch, 29)
    assert run_points(aws)["expired_lots"] == 0
    assert balance(api, cid)["available"] == 40
    # When it comes two days later
    shift_clock(monkeypatch, 31)
    report = run_points(aws)
    # Then the lot expired with a ledger entry, and the balance says so
    assert report["expired_lots"] == 1
    after = balance(api, cid)
    assert (after["available"], after["expired_total"], after["expiring"]) == (0, 40, [])
    expired = api.ok("GET", f"/v1/customers/{cid}/ledger")["items"][0]
    assert (expired["type"], expired["points"]) == ("expire", -40)
    assert [ref["lot_id"] for ref in expired["lots"]] == [lot["lot_id"]]
    # And the lots page lists only lots with points left (the spent one lives on in the ledger)
    assert api.ok("GET", f"/v1/customers/{cid}/lots")["items"] == []
    # And a later run has nothing left to read
    assert run_points(aws)["wallets"] == 0


def test_reminders_quote_what_remains_once_per_threshold_and_respect_consent(
    api: Api, aws: Aws, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a consenting customer who earned 100 then spent 70, and one who did not consent
    yes = customer(api, "yes@example.com")
    no = customer(api, "no@example.com", consent=False)
    earn(api, yes, "pos-1", 100)
    earn(api, no, "pos-2", 100)
    redeem = {"external_id": "rd-1", "points": 70, "reward": "mug"}
    api.ok("POST", f"/v1/customers/{yes}/redemptions", redeem)
    # When the run comes 7 days before the expiry day
    shift_clock(monkeypatch, 24)
    report = run_points(aws)
    # Then the consenting customer gets one e-mail quoting the 30 points that remain
    assert (report["reminders_sent"], report["reminders_skipped"]) == (1, 1)
    (mail,) = sent()
    assert mail.destinations["ToAddresses"] == ["yes@example.com"]
    assert "30 of your points expire" in mail.subject and "100" not in mail.body
    # And a second run the same day sends nothing again
    assert run_points(aws)["reminders_sent"] == 0 and len(sent()) == 1
    # When the last day comes, after 20 more points were spent / Then the 1-day reminder quotes 10
    api.ok("POST", f"/v1/customers/{yes}/redemptions", {**redeem, "external_id": "rd-2", "points": 20})
    shift_clock(monkeypatch, 29.5)
    assert run_points(aws)["reminders_sent"] == 1
    assert "10 of your points expire" in sent()[-1].subject


def test_a_customer_who_spent_everything_gets_no_reminder(
    api: Api, aws: Aws, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = customer(api, "spent@example.com")
    earn(api, cid, "pos-1", 10)
    api.ok("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "rd", "points": 10, "reward": "x"})
    shift_clock(monkeypatch, 24)
    assert run_points(aws)["reminders_sent"] == 0 and sent() == []


def test_pending_points_mature_in_the_run(api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 14-day return window
    api.ok("PUT", "/v1/settings/points", {**SETTINGS, "pending_days": 14}, role="admin")
    cid = customer(api, "pend@example.com", consent=False)
    earn(api, cid, "pos-1", 25)
    assert (balance(api, cid)["pending"], balance(api, cid)["available"]) == (25, 0)
    # When the run comes after the window / Then the points are available, with an entry
    shift_clock(monkeypatch, 15)
    assert run_points(aws)["activated_lots"] == 1
    assert (balance(api, cid)["pending"], balance(api, cid)["available"]) == (0, 25)
    assert ledger_types(api, cid)[0] == "activate"


def test_the_run_stops_when_the_function_is_out_of_time(
    api: Api, aws: Aws, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.services.points import run

    cid = customer(api, "late@example.com", consent=False)
    earn(api, cid, "pos-1", 5)
    shift_clock(monkeypatch, 40)
    report = run.run(time_left=lambda: run.SAFETY_SECONDS - 1)
    assert report.out_of_time and report.expired_lots == 0
    assert balance(api, cid)["available"] == 0  # expired lots are never spendable, processed or not
    assert run.run().expired_lots == 1


# --- merges and exclusion ----------------------------------------------------------------------


def test_card_replacement_moves_lots_with_their_dates(api: Api, configured: None) -> None:
    # Given a registered customer with a card, and a packed card whose owner earned, then returned part
    cards = api.ok("POST", "/v1/card-batches", {"numbers": ["8100001", "8100002"]}, role="admin")["cards"]
    body = {"email": "rep@example.com", "card_number": "8100001"}
    cid = api.ok("POST", "/v1/registrations", body)["customer_id"]
    earn(api, cid, "pos-own", 5)
    virtual = cards[1]["customer_id"]
    earn(api, virtual, "pos-v1", 30)
    earn(api, virtual, "pos-v2", 10)
    api.ok(
        "POST",
        f"/v1/customers/{virtual}/purchases/pos-v1/returns",
        {"external_id": "ret", "eligible_amount": 15},
        role="service",
    )
    before = api.ok("GET", f"/v1/customers/{virtual}/lots")["items"]
    # When the customer's card is replaced by the packed one
    replace = {"new_card_number": "8100002", "new_card_secret": cards[1]["secret"]}
    api.ok("POST", f"/v1/customers/{cid}/cards/8100001/replacement", replace, expect=201)
    # Then the virtual owner's 25 points moved to the customer, with an entry on each side
    assert balance(api, cid)["available"] == 30
    assert ledger_types(api, cid)[0] == "merge_in"
    assert balance(api, virtual)["available"] == 0 and ledger_types(api, virtual)[0] == "merge_out"
    # And the moved lots kept their remainders and expiry dates
    lots = {lot["lot_id"]: lot for lot in api.ok("GET", f"/v1/customers/{cid}/lots")["items"]}
    assert sorted(lot["remaining"] for lot in before) == [10, 15]
    for lot in before:
        moved = next(
            m for m in lots.values() if m["earned_at"] == lot["earned_at"] and m["points"] == lot["points"]
        )
        assert (moved["remaining"], moved["expires_at"]) == (lot["remaining"], lot["expires_at"])


def test_exclusion_forfeits_the_balance_with_an_entry(api: Api, configured: None) -> None:
    cid = customer(api, "gone@example.com")
    earn(api, cid, "pos-1", 60)
    api.ok("POST", f"/v1/customers/{cid}/exclusion", {"reason": "asked"})
    after = balance(api, cid)
    assert (after["available"], after["pending"], after["debt"]) == (0, 0, 0)
    (forfeit, earned) = api.ok("GET", f"/v1/customers/{cid}/ledger")["items"]
    assert (forfeit["type"], forfeit["points"], forfeit["balance_after"]) == ("forfeit", -60, 0)
    assert earned["type"] == "earn"


# --- webhooks ----------------------------------------------------------------------------------


def test_points_events_reach_subscribers_signed(
    api: Api,
    aws: Aws,
    configured: None,
    local_stack: None,
    receiver: Receiver,
    dispatch: Dispatch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a subscription to the points events, and a customer who earns, spends, returns
    subscribe(
        api,
        receiver,
        events=[
            "points.earned",
            "points.redeemed",
            "points.reversed",
            "points.adjusted",
            "points.expiring",
            "points.expired",
            "balance.debt",
        ],
    )
    cid = customer(api, "hook@example.com", consent=False)
    earn(api, cid, "pos-1", 50)
    api.ok("POST", f"/v1/customers/{cid}/redemptions", {"external_id": "rd", "points": 45, "reward": "x"})
    api.ok(
        "POST",
        f"/v1/customers/{cid}/purchases/pos-1/returns",
        {"external_id": "ret", "eligible_amount": 50},
        role="service",
    )
    adjust = {"external_id": "adj", "points": 80, "reason": "goodwill"}
    api.ok("POST", f"/v1/customers/{cid}/point-adjustments", adjust, role="admin")
    shift_clock(monkeypatch, 24)
    run_points(aws)
    shift_clock(monkeypatch, 31)
    run_points(aws)
    # When the stream is pumped
    _, result = dispatch.pump()
    # Then each change arrived once as its event, verified, with amounts and no free text
    assert result == {"batchItemFailures": []}
    got = sorted((r.payload["type"], r.payload["data"]["points"]) for r in receiver.received)
    assert got == sorted(
        [
            ("points.earned", 50),
            ("points.redeemed", -45),
            ("points.reversed", -5),
            ("balance.debt", -45),
            ("points.adjusted", 80),
            ("points.expiring", 35),
            ("points.expired", -35),
        ]
    )
    assert all(r.verified for r in receiver.received)
    assert {r.payload["data"]["customer_id"] for r in receiver.received} == {cid}
    assert all("goodwill" not in r.body for r in receiver.received)
