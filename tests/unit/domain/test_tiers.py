"""Tier rules without AWS (loyalty.domain.tiers): the qualifying value, upgrades, the retention
check, manual tiers, re-evaluation and the ladder's fit with the status catalog."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain import tiers
from loyalty.domain.tiers import Ladder, Move, TierRecord

RANKS = {"gold": 1, "silver": 2, "bronze": 3}
STORED = {
    "basis": "eligible_spend",
    "window_months": 12,
    "retention": "anniversary",
    "retention_months": 12,
    "downgrade": "one_down",
    "tiers": [
        {"code": "bronze", "attain": "0", "maintain": "0"},
        {"code": "silver", "attain": "500", "maintain": "400"},
        {"code": "gold", "attain": "1000", "maintain": "800"},
    ],
    "version": 1,
}
ZONE = "Europe/Paris"


def ladder(**changes: Any) -> Ladder:
    built = Ladder.of({**STORED, **changes}, ZONE)
    assert built is not None
    return built


def record(*purchases: tuple[str, str], tier: dict[str, str] | None = None) -> TierRecord:
    rec = tiers.empty_record("b", "c")
    for at, spend in purchases:
        tiers.add_activity(rec, at, ladder().zone, Decimal(spend), int(Decimal(spend)))
    rec["tier"] = tier  # type: ignore[typeddict-item]
    rec["effective"] = tier["code"] if tier else None
    return rec


def test_the_qualifying_value_is_the_window_of_months_in_the_business_time_zone() -> None:
    # Given purchases 13 months ago, 11 months ago, and on the last evening of November in Paris
    rec = record(
        ("2025-10-15T10:00:00.000000Z", "300"),
        ("2025-12-31T23:30:00.000000Z", "200"),  # already January 2026 in Paris
        ("2026-11-30T22:30:00.000000Z", "100"),  # already December in Paris
    )
    now = "2026-12-01T09:00:00.000000Z"
    # Then a 12-month window ending in December 2026 counts January 2026 onwards only
    assert tiers.qualifying_value(rec, ladder(), now) == Decimal(300)
    # And points earned is its own basis over the same months
    assert tiers.qualifying_value(rec, ladder(basis="points_earned"), now) == Decimal(300)
    assert tiers.qualifying_value(rec, ladder(window_months=24), now) == Decimal(600)


def test_a_return_counts_against_its_purchase_month_and_never_below_zero() -> None:
    rec = record(("2026-11-10T10:00:00.000000Z", "100"))
    tiers.add_activity(rec, "2026-11-10T10:00:00.000000Z", ladder().zone, Decimal(-150), -150)
    assert rec["months"]["2026-11"] == {"spend": "0", "points": 0}


def test_a_purchase_that_reaches_a_threshold_upgrades_to_the_highest_tier_reached() -> None:
    # Given a bronze customer at 450
    rec = record(("2026-11-01T10:00:00.000000Z", "450"), tier=None)
    now = "2026-11-20T10:00:00.000000Z"
    # When a purchase takes the value to 1,050
    tiers.add_activity(rec, now, ladder().zone, Decimal(600), 600)
    outcome = tiers.on_activity(rec, ladder(), RANKS, now)
    # Then the customer is gold straight away, retained for 12 months from the day reached
    assert outcome.record["effective"] == "gold"
    assert outcome.record["tier"] == {
        "code": "gold",
        "reached_at": now,
        "retained_until": "2027-11-20T22:59:59.999999Z",
    }
    assert [(e.move, e.from_code, e.to_code) for e in outcome.events] == [(Move.UPGRADED, None, "gold")]


def test_a_lower_value_never_downgrades_outside_the_check() -> None:
    gold = {
        "code": "gold",
        "reached_at": "2026-01-01T00:00:00.000000Z",
        "retained_until": "2027-01-01T22:59:59.999999Z",
    }
    rec = record(("2026-11-01T10:00:00.000000Z", "10"), tier=gold)
    outcome = tiers.on_activity(rec, ladder(), RANKS, "2026-11-20T10:00:00.000000Z")
    assert outcome.record["effective"] == "gold" and outcome.events == []


@pytest.mark.parametrize(
    ("spent", "downgrade", "expected", "move"),
    [
        ("900", "one_down", "gold", Move.RETAINED),  # at or above gold's maintain (800)
        ("300", "one_down", "silver", Move.DOWNGRADED),  # one step down, whatever the value
        ("300", "recompute", "bronze", Move.DOWNGRADED),  # 300 maintains bronze only
        ("450", "recompute", "silver", Move.DOWNGRADED),
    ],
)
def test_the_retention_check(spent: str, downgrade: str, expected: str, move: Move) -> None:
    # Given a gold customer whose retention ended yesterday
    gold = {
        "code": "gold",
        "reached_at": "2025-12-01T10:00:00.000000Z",
        "retained_until": "2026-11-30T22:59:59.999999Z",
    }
    rec = record(("2026-06-01T10:00:00.000000Z", spent), tier=gold)
    now = "2026-12-01T09:00:00.000000Z"
    # When the check runs
    outcome = tiers.at_check(rec, ladder(downgrade=downgrade), RANKS, now)
    # Then the customer is retained or moved as the ladder says
    assert outcome.record["effective"] == expected
    assert [e.move for e in outcome.events] == [move]
    if move is Move.RETAINED:
        # retained from the end of the last period, so a late check shifts nothing
        assert outcome.record["tier"]["retained_until"] == "2027-11-30T22:59:59.999999Z"  # type: ignore[index]
    else:
        assert outcome.record["tier"]["reached_at"] == now  # type: ignore[index]


def test_a_check_before_the_retention_ends_changes_nothing() -> None:
    gold = {
        "code": "gold",
        "reached_at": "2026-01-01T00:00:00.000000Z",
        "retained_until": "2027-01-01T22:59:59.999999Z",
    }
    rec = record(tier=gold)
    outcome = tiers.at_check(rec, ladder(), RANKS, "2026-12-01T09:00:00.000000Z")
    assert outcome.record == rec and outcome.events == []


def test_fixed_dates_retention_ends_on_the_next_date_after_reaching() -> None:
    fixed = ladder(retention="fixed_dates", fixed_dates=["01-01", "07-01"])
    assert fixed.retention_end("2026-03-15T10:00:00.000000Z") == "2026-07-01T21:59:59.999999Z"
    assert fixed.retention_end("2026-07-01T21:59:59.999999Z") == "2027-01-01T22:59:59.999999Z"
    leap = ladder(retention="fixed_dates", fixed_dates=["02-29"])
    assert leap.retention_end("2026-03-01T10:00:00.000000Z") == "2027-02-28T22:59:59.999999Z"


def test_a_manual_tier_is_a_floor_only_when_it_says_so() -> None:
    silver = {
        "code": "silver",
        "reached_at": "2026-01-01T00:00:00.000000Z",
        "retained_until": "2027-01-01T22:59:59.999999Z",
    }
    now = "2026-06-01T10:00:00.000000Z"
    manual = {"code": "bronze", "until": "2026-12-31T22:59:59.999999Z"}
    # A bronze manual tier that is not a floor sets the tier to bronze, below the computed silver
    capped = tiers.set_manual(record(tier=silver), {**manual, "floor": False}, ladder(), RANKS, now)  # type: ignore[typeddict-item]
    assert capped.record["effective"] == "bronze" and capped.events[0].move is Move.DOWNGRADED
    # As a floor it gives way to the better computed silver
    floored = tiers.set_manual(record(tier=silver), {**manual, "floor": True}, ladder(), RANKS, now)  # type: ignore[typeddict-item]
    assert floored.record["effective"] == "silver" and floored.events == []
    # A gold floor lifts the customer; when it ends, the check puts the computed tier back
    lifted = tiers.set_manual(
        record(tier=silver), {**manual, "code": "gold", "floor": True}, ladder(), RANKS, now
    )  # type: ignore[typeddict-item]
    assert lifted.record["effective"] == "gold"
    ended = tiers.at_check(lifted.record, ladder(), RANKS, "2027-01-01T00:00:00.000000Z")
    assert ended.record["manual"] is None and ended.record["effective"] == "silver"
    assert [(e.move, e.reason) for e in ended.events] == [(Move.DOWNGRADED, "manual_ended")]
    assert tiers.due_at(lifted.record) == "2026-12-31T22:59:59.999999Z"


def test_a_customer_who_holds_no_statuses_gets_no_tier_but_keeps_the_value() -> None:
    rec = record(("2026-11-01T10:00:00.000000Z", "2000"))
    outcome = tiers.on_activity(rec, ladder(), RANKS, "2026-11-02T10:00:00.000000Z", holds=False)
    assert outcome.record["tier"]["code"] == "gold"  # type: ignore[index]
    assert outcome.record["effective"] is None and outcome.events == []


def test_re_evaluation_after_the_ladder_changed() -> None:
    silver = {
        "code": "silver",
        "reached_at": "2026-01-01T00:00:00.000000Z",
        "retained_until": "2027-01-01T22:59:59.999999Z",
    }
    rec = record(("2026-11-01T10:00:00.000000Z", "450"), tier=silver)
    now = "2026-11-02T10:00:00.000000Z"
    # Raised thresholds: 450 no longer maintains silver (500), it maintains bronze
    raised = ladder(
        tiers=[
            {"code": "bronze", "attain": "0", "maintain": "0"},
            {"code": "silver", "attain": "600", "maintain": "500"},
            {"code": "gold", "attain": "1200", "maintain": "1000"},
        ]
    )
    assert tiers.evaluate(rec, raised, RANKS, now).record["effective"] == "bronze"
    # Lowered thresholds: 450 attains gold
    lowered = ladder(
        tiers=[
            {"code": "bronze", "attain": "0", "maintain": "0"},
            {"code": "silver", "attain": "100", "maintain": "50"},
            {"code": "gold", "attain": "400", "maintain": "300"},
        ]
    )
    assert tiers.evaluate(rec, lowered, RANKS, now).record["effective"] == "gold"
    # The same ladder moves nobody
    assert tiers.evaluate(rec, ladder(), RANKS, now).events == []


def test_next_tier_says_what_is_missing() -> None:
    rec = record(
        ("2026-11-01T10:00:00.000000Z", "620"),
        tier={"code": "silver", "reached_at": "x", "retained_until": "y"},
    )
    upcoming = tiers.next_tier(rec, ladder(), "2026-11-02T10:00:00.000000Z")
    assert upcoming == tiers.NextTier("gold", Decimal(380))


DEFINITIONS = {
    "gold": {"rank": 1},
    "silver": {"rank": 2},
    "bronze": {"rank": 3},
    "influencer": {"rank": 4, "rule": {"attribute": "followers", "operator": "gt", "value": 1}},
}


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            [{"code": "platinum", "attain": 1, "maintain": 1}],
            ("tiers[0].code", "status platinum is not defined"),
        ),
        ([{"code": "influencer", "attain": 1, "maintain": 1}], ("tiers[0].code", "given by a rule")),
        (
            [
                {"code": "gold", "attain": 100, "maintain": 50},
                {"code": "silver", "attain": 200, "maintain": 40},
            ],
            ("tiers", "attain must rise as the rank improves: gold (rank 1) needs more than silver (rank 2)"),
        ),
        (
            [
                {"code": "gold", "attain": 300, "maintain": 50},
                {"code": "silver", "attain": 200, "maintain": 60},
            ],
            ("tiers", "maintain must rise as the rank improves"),
        ),
    ],
)
def test_a_ladder_that_does_not_fit_the_catalog_names_the_problem(
    steps: list[dict[str, Any]], problem: tuple[str, str]
) -> None:
    found = tiers.ladder_problems(steps, DEFINITIONS)
    assert any(f == problem[0] and problem[1] in m for f, m in found), found


def test_a_ladder_that_fits_has_no_problems() -> None:
    assert tiers.ladder_problems(STORED["tiers"], DEFINITIONS) == []  # type: ignore[arg-type]
