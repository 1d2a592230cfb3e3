"""The pure statuses module: rule language (validation and evaluation), rule-driven changes,
ranking, re-rank checks and entitlements. No AWS."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loyalty.domain.ranked_statuses import (
    RuleChanges,
    best,
    check_order,
    entitlements,
    evaluate,
    ranked,
    rule_changes,
    status_order,
)
from loyalty.schemas.ranked_statuses import Rule, check_rule_size, rule_to_data

DEFINITIONS: dict[str, dict[str, Any]] = {
    "vip": {
        "code": "vip",
        "name": "VIP",
        "rank": 1,
        "customer_facing": True,
        "modifiers": {"discount_percent": 10},
    },
    "staff": {
        "code": "staff",
        "name": "Staff",
        "rank": 2,
        "customer_facing": False,
        "modifiers": {"discount_percent": 30, "free_delivery": True, "reward_expiry_extra_days": 0},
    },
    "influencer": {
        "code": "influencer",
        "name": "Influencer",
        "rank": 3,
        "customer_facing": True,
        "modifiers": {"tier_points_multiplier": 2.0, "free_delivery": False},
        "rule": {"attribute": "instagram_followers", "operator": "gt", "value": 10000},
    },
}


def rule(data: dict[str, Any]) -> dict[str, Any]:
    return rule_to_data(check_rule_size(Rule.model_validate(data)))


def error_locs(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(data)
    return [e["loc"] for e in caught.value.errors()]


# --- evaluation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "profile", "expected"),
    [
        (
            {"attribute": "instagram_followers", "operator": "gt", "value": 10000},
            {"attributes": {"instagram_followers": 10001}},
            True,
        ),
        (
            {"attribute": "instagram_followers", "operator": "gt", "value": 10000},
            {"attributes": {"instagram_followers": 10000}},
            False,
        ),
        (
            {"attribute": "attributes.instagram_followers", "operator": "gte", "value": 10000},
            {"attributes": {"instagram_followers": 10000}},
            True,
        ),
        (
            {"attribute": "instagram_followers", "operator": "gt", "value": 10000},
            {"attributes": {"instagram_followers": "20000"}},
            False,
        ),
        ({"attribute": "instagram_followers", "operator": "gt", "value": 10000}, {"attributes": {}}, False),
        ({"attribute": "score", "operator": "lt", "value": 2.5}, {"attributes": {"score": 2}}, True),
        ({"attribute": "score", "operator": "lte", "value": 2}, {"attributes": {"score": 2.0}}, True),
        ({"attribute": "city", "operator": "eq", "value": "Oslo"}, {"attributes": {"city": "Oslo"}}, True),
        ({"attribute": "city", "operator": "ne", "value": "Oslo"}, {"attributes": {"city": "Rome"}}, True),
        ({"attribute": "city", "operator": "ne", "value": "Oslo"}, {"attributes": {}}, False),
        ({"attribute": "flag", "operator": "eq", "value": 1}, {"attributes": {"flag": True}}, False),
        ({"attribute": "flag", "operator": "eq", "value": True}, {"attributes": {"flag": True}}, True),
        (
            {"attribute": "program_status", "operator": "in", "value": ["active", "pending"]},
            {"program_status": "active"},
            True,
        ),
        (
            {"attribute": "program_status", "operator": "in", "value": ["active"]},
            {"program_status": "imported"},
            False,
        ),
        ({"attribute": "email", "operator": "exists"}, {"email": "a@example.com"}, True),
        ({"attribute": "email", "operator": "exists", "value": False}, {"email": None}, True),
        (
            {"attribute": "marketing_consent", "operator": "eq", "value": True},
            {"marketing_consent": True},
            True,
        ),
        (
            {"attribute": "joined", "operator": "gte", "value": "2024-01-01"},
            {"attributes": {"joined": "2024-06-01"}},
            True,
        ),
    ],
)
def test_conditions(data: dict[str, Any], profile: dict[str, Any], expected: bool) -> None:
    # Given a condition and a profile / When evaluated / Then the documented semantics hold
    assert evaluate(rule(data), profile) is expected


def test_groups_combine_conditions() -> None:
    # Given (followers > 10000 AND active) OR tag == "press"
    data = rule(
        {
            "any": [
                {
                    "all": [
                        {"attribute": "instagram_followers", "operator": "gt", "value": 10000},
                        {"attribute": "program_status", "operator": "eq", "value": "active"},
                    ]
                },
                {"attribute": "tag", "operator": "eq", "value": "press"},
            ]
        }
    )
    # Then each branch decides as expected
    assert evaluate(data, {"program_status": "active", "attributes": {"instagram_followers": 20000}})
    assert not evaluate(data, {"program_status": "pending", "attributes": {"instagram_followers": 20000}})
    assert evaluate(data, {"program_status": "pending", "attributes": {"tag": "press"}})


# --- rule-driven changes -----------------------------------------------------------------


def test_rule_changes_add_and_remove_rule_assignments_only() -> None:
    # Given a customer who gained followers, and one who lost them
    gained = {"attributes": {"instagram_followers": 50000}, "statuses": {}}
    lost = {"attributes": {"instagram_followers": 5}, "statuses": {"influencer": {"source": "rule"}}}
    manual = {"attributes": {"instagram_followers": 5}, "statuses": {"influencer": {"source": "manual"}}}
    # When rules are re-evaluated / Then the rule status is added or removed, manual is kept
    assert rule_changes(gained, DEFINITIONS) == RuleChanges(["influencer"], [])
    assert rule_changes(lost, DEFINITIONS) == RuleChanges([], ["influencer"])
    assert not rule_changes(manual, DEFINITIONS)


def test_rule_assignment_goes_when_its_rule_is_removed_but_not_when_its_definition_is_deleted() -> None:
    # Given a rule assignment
    profile = {"attributes": {"instagram_followers": 50000}, "statuses": {"influencer": {"source": "rule"}}}
    without_rule = {
        **DEFINITIONS,
        "influencer": {k: v for k, v in DEFINITIONS["influencer"].items() if k != "rule"},
    }
    deleted = {k: v for k, v in DEFINITIONS.items() if k != "influencer"}
    # Then a rule-less definition drops it, a deleted one leaves it to the removal job
    assert rule_changes(profile, without_rule).removed == ["influencer"]
    assert not rule_changes(profile, deleted)


def test_rule_changes_can_be_limited_to_some_codes() -> None:
    # Given a matching profile / When only other codes are looked at / Then nothing changes
    profile = {"attributes": {"instagram_followers": 50000}, "statuses": {}}
    assert not rule_changes(profile, DEFINITIONS, only=["vip"])


# --- ranking, re-ranking, entitlements ---------------------------------------------------


def test_ranked_orders_by_rank_hides_internal_and_deleted() -> None:
    # Given statuses assigned in any order, one of them no longer defined
    assigned = {"influencer": {}, "staff": {}, "vip": {}, "gone": {}}
    # Then back office sees all defined ones by rank, the customer only customer-facing ones
    assert [r.code for r in ranked(assigned, DEFINITIONS)] == ["vip", "staff", "influencer"]
    facing = ranked(assigned, DEFINITIONS, customer_facing_only=True)
    assert [r.code for r in facing] == ["vip", "influencer"] and best(facing) == "vip"
    assert status_order({"influencer": {}, "staff": {}}, DEFINITIONS) == [
        "staff",
        "influencer",
    ]


def test_check_order_names_missing_unknown_and_duplicated_codes() -> None:
    # Given / When / Then
    assert check_order(["vip", "staff", "influencer"], DEFINITIONS) == {}
    assert check_order(["vip", "vip", "other"], DEFINITIONS) == {
        "missing": ["influencer", "staff"],
        "unknown": ["other"],
        "duplicated": ["vip"],
    }


def test_entitlements_best_wins_then_gaps_filled_by_rank() -> None:
    # Given VIP, Staff and Influencer assigned
    assigned = {"vip": {}, "staff": {}, "influencer": {}}
    # When entitlements are computed
    granted = {e.modifier: (e.value, e.granted_by) for e in entitlements(assigned, DEFINITIONS, "2030")}
    # Then VIP's discount wins; Staff fills what it sets (an explicit 0 too); Influencer the multiplier
    assert granted == {
        "discount_percent": (10, "vip"),
        "free_delivery": (True, "staff"),
        "reward_expiry_extra_days": (0, "staff"),
        "tier_points_multiplier": (2.0, "influencer"),
    }


def test_expired_assignments_grant_nothing() -> None:
    # Given VIP expired before now / Then only Staff's modifiers are in force
    assigned = {"vip": {"expires_at": "2020-01-01T00:00:00.000000Z"}, "staff": {}}
    granted = entitlements(assigned, DEFINITIONS, "2026-01-01T00:00:00.000000Z")
    assert {e.granted_by for e in granted} == {"staff"}
    assert entitlements({}, DEFINITIONS, "2026") == []
