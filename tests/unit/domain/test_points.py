"""The points ledger's rules (loyalty.domain.points), without AWS: expiry in the business's time
zone, earning, allocation order, returns, debt, holds, reversals, reminders, merges."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain import clock, points
from loyalty.domain.points import EntryType, ExpiryPolicy, InsufficientPoints, Ledger, Policy, ReturnPolicy

NOW = "2026-03-10T12:00:00.000000Z"


def wallet(*lots: dict[str, Any], debt: int = 0) -> points.Wallet:
    base = points.empty_wallet("b", "c")
    base["lots"] = [dict(lot) for lot in lots]  # type: ignore[misc]
    base["debt"] = debt
    return base


def lot(
    lot_id: str,
    remaining: int,
    expires_at: str | None = None,
    earned_at: str = "2026-01-01T00:00:00.000000Z",
    available_at: str | None = None,
    points_: int | None = None,
) -> dict[str, Any]:
    return {
        "lot_id": lot_id,
        "points": points_ or remaining,
        "remaining": remaining,
        "earned_at": earned_at,
        "available_at": available_at or earned_at,
        "expires_at": expires_at,
        "source": "earn",
        "ref": lot_id,
    }


# --- expiry is the end of a local day, fixed when the lot is made -----------------------------


def test_days_expiry_is_the_end_of_the_local_day_not_utc() -> None:
    # Given a business in Auckland (UTC+13 in March) and a purchase at 23:30 local on 10 March
    policy = Policy(expiry=ExpiryPolicy.DAYS, expiry_value=30, time_zone="Pacific/Auckland")
    earned = "2026-03-10T10:30:00.000000Z"  # 23:30 in Auckland
    # When the lot's expiry is fixed
    expires = points.expiry_of(earned, policy)
    # Then it is 23:59:59.999999 local on 9 April (10 March + 30 days), not a day early in UTC
    assert expires == "2026-04-09T11:59:59.999999Z"  # UTC+12 after daylight saving ends


@pytest.mark.parametrize(
    ("earned_local_day", "months", "expected_day"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-08-31", 6, "2027-02-28"),
        ("2026-03-15", 12, "2027-03-15"),
    ],
)
def test_months_expiry_rounds_to_month_end(earned_local_day: str, months: int, expected_day: str) -> None:
    policy = Policy(expiry=ExpiryPolicy.MONTHS, expiry_value=months, time_zone="UTC")
    expires = points.expiry_of(f"{earned_local_day}T10:00:00.000000Z", policy)
    assert expires == f"{expected_day}T23:59:59.999999Z"


@pytest.mark.parametrize(
    ("period", "after", "expected"),
    [
        ("month", 0, "2026-05-31"),
        ("quarter", 0, "2026-06-30"),
        ("year", 0, "2026-12-31"),
        ("quarter", 1, "2026-09-30"),
        ("year", 1, "2027-12-31"),
    ],
)
def test_period_end_expiry(period: str, after: int, expected: str) -> None:
    policy = Policy(expiry=ExpiryPolicy.PERIOD_END, expiry_value=after, expiry_period=period, time_zone="UTC")
    assert points.expiry_of("2026-05-14T08:00:00.000000Z", policy) == f"{expected}T23:59:59.999999Z"


def test_never_and_inactivity_lots_carry_no_date_of_their_own() -> None:
    assert points.expiry_of(NOW, Policy()) is None
    inactive = Policy(expiry=ExpiryPolicy.INACTIVITY, expiry_value=12)
    assert points.expiry_of(NOW, inactive) is None
    assert points.inactivity_deadline(NOW, inactive) == "2027-03-10T23:59:59.999999Z"


# --- earning ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate", "rounding", "factor", "expected"),
    [
        ("19.99", "1", "down", "1", 19),
        ("19.99", "1", "nearest", "1", 20),
        ("10", "2.5", "down", "1", 25),
        ("10", "1", "down", "1.5", 15),
        ("0.49", "1", "nearest", "1", 0),
    ],
)
def test_points_for_a_purchase(amount: str, rate: str, rounding: str, factor: str, expected: int) -> None:
    policy = Policy(points_per_unit=Decimal(rate), rounding=rounding)
    assert points.points_for(Decimal(amount), policy, Decimal(factor)) == expected


def test_a_credit_pays_debt_first_and_the_rest_becomes_a_pending_lot() -> None:
    # Given a wallet owing 30 and a 14-day return window
    ledger = Ledger(wallet(debt=30), NOW)
    policy = Policy(pending_days=14)
    # When 100 points are earned
    made = ledger.credit(EntryType.EARN, 100, "L1", policy, external_id="p1")
    change = ledger.done()
    # Then the debt is settled first and 70 points become a lot pending for 14 days
    assert change.wallet["debt"] == 0
    assert made is not None and made["points"] == 70 and made["available_at"] == "2026-03-24T12:00:00.000000Z"
    assert [(e.type, e.points) for e in change.entries] == [(EntryType.EARN, 100), (EntryType.DEBT_SETTLE, 0)]
    assert change.entries[-1].details == {"settled": 30} and change.entries[-1].balance_after == 70


# --- debits name their lots: soonest expiry first, then oldest, never-expiring last -----------------------


def test_a_debit_takes_soonest_expiry_first_then_oldest_and_never_expiring_last() -> None:
    ledger = Ledger(
        wallet(
            lot("forever", 50),
            lot("late", 10, "2026-12-31T23:59:59.999999Z"),
            lot("soon-young", 10, "2026-06-30T23:59:59.999999Z", earned_at="2026-02-01T00:00:00.000000Z"),
            lot("soon-old", 10, "2026-06-30T23:59:59.999999Z", earned_at="2026-01-01T00:00:00.000000Z"),
        ),
        NOW,
    )
    taken = ledger.debit(EntryType.REDEEM, 35, external_id="r1")
    assert [(a["lot_id"], a["points"]) for a in taken] == [
        ("soon-old", 10),
        ("soon-young", 10),
        ("late", 10),
        ("forever", 5),
    ]


def test_only_available_points_are_spent_and_a_shortfall_takes_nothing() -> None:
    ledger = Ledger(
        wallet(lot("ok", 10), lot("pending", 50, available_at="2026-04-01T00:00:00.000000Z")), NOW
    )
    with pytest.raises(InsufficientPoints) as refused:
        ledger.debit(EntryType.REDEEM, 20, external_id="r1")
    assert refused.value.details["available"] == 10
    assert [x["remaining"] for x in ledger.lots] == [10, 50] and ledger.entries == []


# --- returns ----------------------------------------------------------------------------------------------


def test_partial_returns_add_up_exactly_to_the_points_earned() -> None:
    # 100 points for 30.00 returned in thirds: 33, 33, then exactly the 34 left
    earned, eligible = 100, Decimal("30.00")
    steps = [points.taken_back(earned, eligible, Decimal(r)) for r in ("10", "20", "30")]
    assert steps == [33, 66, 100]
    assert points.taken_back(7, Decimal("3"), Decimal("1")) == 2


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (ReturnPolicy.ALLOW_DEBT, (40, 60, 0)),  # 40 from lots, 60 owed
        (ReturnPolicy.WITHIN_BALANCE, (40, 0, 60)),  # 60 let go, recorded as uncollected
        (ReturnPolicy.ONLY_PENDING, (0, 0, 100)),  # the purchase's lot is no longer pending
    ],
)
def test_a_return_after_the_points_were_spent(policy: ReturnPolicy, expected: tuple[int, int, int]) -> None:
    # Given 100 points earned on p1, 60 of them already spent, 40 left
    ledger = Ledger(wallet(lot("L1", 40, points_=100)), NOW)
    # When the whole purchase is returned
    outcome = points.take_back(
        ledger, 100, "L1", Policy(return_policy=policy), external_id="ret1", details={}
    )
    change = ledger.done()
    # Then what can be taken is, and the rest is debt or recorded as uncollected, never lost
    assert (outcome.taken, outcome.debt, outcome.uncollected) == expected
    assert change.wallet["debt"] == expected[1]
    reversal = next(e for e in change.entries if e.type is EntryType.EARN_REVERSAL)
    assert reversal.details.get("uncollected", 0) == expected[2]


def test_a_return_takes_from_the_purchases_own_lot_first() -> None:
    ledger = Ledger(wallet(lot("older", 50, "2026-04-01T00:00:00.000000Z"), lot("mine", 50)), NOW)
    points.take_back(ledger, 30, "mine", Policy(), external_id="ret1", details={})
    assert {x["lot_id"]: x["remaining"] for x in ledger.lots} == {"older": 50, "mine": 20}


# --- holds and reversals -------------------------------------------------------------------------------


def test_a_reversal_restores_the_same_lots_and_an_expired_one_gets_a_grace() -> None:
    # Given a redemption that took from a lot expiring in April and one that never expires
    start = Ledger(wallet(lot("april", 10, "2026-04-30T23:59:59.999999Z"), lot("forever", 10)), NOW)
    taken = start.debit(EntryType.REDEEM, 15, external_id="r1")
    spent = start.done().wallet
    # When it is reversed in May, after the April lot's day
    later = Ledger(spent, "2026-05-05T09:00:00.000000Z")
    later.restore(taken)
    after = {x["lot_id"]: x for x in later.done().wallet["lots"]}
    # Then the points return to their lots: the never-expiring one as it was, the April one
    # with a short grace instead of coming back already expired
    assert after["forever"]["remaining"] == 10 and after["forever"]["expires_at"] is None
    assert after["april"]["remaining"] == 10
    assert after["april"]["expires_at"] == "2026-05-19T09:00:00.000000Z"


def test_time_passing_expires_lots_and_activates_pending_ones_with_entries() -> None:
    w = wallet(
        lot("gone", 5, "2026-03-09T23:59:59.999999Z"),
        lot("ripe", 7, available_at="2026-03-10T00:00:00.000000Z", earned_at="2026-02-24T00:00:00.000000Z"),
        lot("young", 9, available_at="2026-03-20T00:00:00.000000Z", earned_at="2026-03-06T00:00:00.000000Z"),
    )
    ledger = Ledger(w, NOW)
    ledger.settle_time()
    change = ledger.done()
    assert [(e.type, e.points) for e in change.entries] == [(EntryType.EXPIRE, -5), (EntryType.ACTIVATE, 0)]
    assert change.wallet["expired_total"] == 5
    balance = points.Balance.of(change.wallet, NOW)
    assert (balance.available, balance.pending) == (7, 9)


def test_an_unprocessed_expired_lot_is_already_not_spendable() -> None:
    # The run has not come by yet: the balance and debits still treat the lot as gone
    w = wallet(lot("gone", 5, "2026-03-09T23:59:59.999999Z"), lot("ok", 3))
    assert points.Balance.of(w, NOW).available == 3
    with pytest.raises(InsufficientPoints):
        Ledger(w, NOW).debit(EntryType.REDEEM, 4, external_id="r")


# --- reminders ---------------------------------------------------------------------------


def test_reminders_are_due_once_per_lot_and_threshold_quoting_what_remains() -> None:
    policy = Policy(reminder_days=(30, 7), time_zone="Europe/Paris")
    expiring = lot("L1", 12, "2026-04-30T21:59:59.999999Z", points_=50)  # end of 30 April in Paris
    w = wallet(expiring)
    # 35 days before: nothing due; 29 days before: the 30-day reminder
    assert points.due_reminders(w, policy, "2026-03-26T12:00:00.000000Z") == []
    due = points.due_reminders(w, policy, "2026-04-01T12:00:00.000000Z")
    assert [(x[0]["lot_id"], x[0]["remaining"], x[1]) for x in due] == [("L1", 12, 30)]
    points.mark_reminded(w["lots"][0], 30, policy)
    assert points.due_reminders(w, policy, "2026-04-02T12:00:00.000000Z") == []
    # 5 days before: the 7-day reminder, once
    assert [x[1] for x in points.due_reminders(w, policy, "2026-04-25T12:00:00.000000Z")] == [7]
    points.mark_reminded(w["lots"][0], 7, policy)
    assert points.due_reminders(w, policy, "2026-04-26T12:00:00.000000Z") == []


def test_a_late_first_reminder_settles_the_earlier_threshold_too() -> None:
    policy = Policy(reminder_days=(30, 7))
    w = wallet(lot("L1", 5, "2026-03-14T23:59:59.999999Z"))
    assert [x[1] for x in points.due_reminders(w, policy, NOW)] == [7]
    points.mark_reminded(w["lots"][0], 7, policy)
    assert w["lots"][0]["reminded"] == [7, 30]
    # And the wallet's next piece of work is its expiry, not a reminder in the past
    assert points.next_due(w, policy) == "2026-03-15T00:00:00.000000Z"


# --- merges and forfeits --------------------------------------------------------------------


def test_a_merge_moves_lots_with_their_dates_and_the_debt() -> None:
    source = wallet(
        lot("L1", 20, "2026-09-30T23:59:59.999999Z", available_at="2026-03-20T00:00:00.000000Z"), debt=5
    )
    source["customer_id"], source["lifetime_earned"] = "v", 20
    target = wallet(lot("L1", 3))
    into, out = points.merge(target, source, NOW)
    moved = next(x for x in into.wallet["lots"] if x.get("moved_from") == "L1")
    assert moved["lot_id"] != "L1"  # ids are the receiving wallet's own
    assert (moved["remaining"], moved["expires_at"], moved["available_at"]) == (
        20,
        "2026-09-30T23:59:59.999999Z",
        "2026-03-20T00:00:00.000000Z",
    )
    assert into.wallet["debt"] == 5 and out.wallet["debt"] == 0 and out.wallet["lots"] == []
    assert [e.type for e in into.entries] == [EntryType.MERGE_IN, EntryType.DEBT]
    assert into.entries[-1].balance_after == 3 + 20 - 5


def test_exclusion_forfeits_the_balance_with_an_entry() -> None:
    change = points.forfeit(wallet(lot("a", 7), lot("b", 3), debt=2), NOW)
    assert change.wallet["lots"] == [] and change.wallet["debt"] == 0
    (entry,) = change.entries
    assert (entry.type, entry.points, entry.balance_after) == (EntryType.FORFEIT, -10, 0)
    assert entry.details == {"held": 0, "debt": 2}


def test_a_wallet_of_many_lots_folds_those_nothing_tells_apart() -> None:
    # Given more open lots than a wallet keeps apart: 3 purchases a day for 200 days
    policy = Policy(expiry=ExpiryPolicy.DAYS, expiry_value=365, time_zone="Europe/Paris")
    wallet = points.empty_wallet("b", "c")
    day = points.parse("2026-01-01T09:00:00.000000Z")
    made: dict[int, tuple[str, str | None]] = {}
    for n in range(600):
        ledger = Ledger(wallet, clock.iso(day + timedelta(days=n // 3, minutes=n % 3)))
        lot_id = ledger.next_lot_id()
        lot = ledger.credit(EntryType.EARN, 10, lot_id, policy, external_id=f"p{n}")
        assert lot is not None
        made[n] = (lot_id, lot["expires_at"])
        wallet = ledger.done().wallet
    # Then the wallet stays under its bound, and every day's 30 points keep that day's expiry
    lots = wallet["lots"]
    assert len(lots) <= points.COALESCE_ABOVE
    per_day: dict[str | None, int] = {}
    for lot in lots:
        per_day[lot["expires_at"]] = per_day.get(lot["expires_at"], 0) + lot["remaining"]
    assert per_day == {expiry: 30 for _, expiry in made.values()}
    # And a return of the first day's second purchase still starts from the lot holding its points
    second_id, second_expiry = made[1]
    assert second_id not in {lot["lot_id"] for lot in lots}
    first = Ledger(wallet, clock.iso(day + timedelta(days=201))).spendable(first=second_id)[0]
    assert points.holds_lot(first, second_id) and first["expires_at"] == second_expiry
