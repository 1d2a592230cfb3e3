"""The pure statuses module: rule language (validation and evaluation), rule-driven changes,
ranking, re-rank checks and entitlements. No AWS."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loyalty import statuses
from loyalty.status_models import BulkAssignment, StatusDefinitionCreate, StatusDefinitionPatch

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
    return statuses.rule_to_data(statuses.check_rule_size(statuses.Rule.model_validate(data)))


def error_locs(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        statuses.Rule.model_validate(data)
    return [e["loc"] for e in caught.value.errors()]


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"attribute": "a", "operator": "between", "value": 1}, ("operator",)),
        ({"attribute": "a", "operator": "gt", "value": True}, ("value",)),
        ({"attribute": "a", "operator": "gt", "value": [1]}, ("value",)),
        ({"attribute": "a", "operator": "in", "value": 3}, ("value",)),
        ({"attribute": "a", "operator": "in", "value": []}, ("value",)),
        ({"attribute": "a", "operator": "eq"}, ("value",)),
        ({"attribute": "a", "operator": "exists", "value": "yes"}, ("value",)),
        ({"attribute": "bad name", "operator": "exists"}, ("attribute",)),
        (
            {"all": [{"any": [{"attribute": "a", "operator": "lt", "value": None}]}]},
            ("all", 0, "any", 0, "value"),
        ),
        ({"all": []}, ("all",)),
        (
            {
                "attribute": "a",
                "operator": "eq",
                "value": 1,
                "any": [{"attribute": "b", "operator": "exists"}],
            },
            (),
        ),
        ({"attribute": "a"}, ()),
        ({"all": [{"attribute": "a", "operator": "exists"}], "value": 1}, ()),
        ({"attribute": "a", "operator": "eq", "value": 1, "unknown": 2}, ("unknown",)),
    ],
)
def test_invalid_rules_are_refused_at_their_path(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    # Given a malformed rule / When it is validated / Then the error points at the failing part
    assert loc in error_locs(data)


def test_rules_are_bounded_in_depth() -> None:
    # Given a rule nested deeper than allowed
    node: dict[str, Any] = {"attribute": "a", "operator": "exists"}
    for _ in range(statuses.MAX_RULE_DEPTH):
        node = {"all": [node]}
    parsed = statuses.Rule.model_validate(node)
    # When its size is checked / Then it is refused
    with pytest.raises(ValueError, match="nests at most"):
        statuses.check_rule_size(parsed)


def test_definition_request_names_the_rule_path() -> None:
    # Given a definition whose nested rule has an unknown operator
    body = {"code": "x", "name": "X", "rule": {"any": [{"attribute": "a", "operator": "like", "value": "b"}]}}
    # When it is parsed / Then the location names rule.any[0].operator
    with pytest.raises(ValidationError) as caught:
        StatusDefinitionCreate.model_validate(body)
    assert ("rule", "any", 0, "operator") in [e["loc"] for e in caught.value.errors()]


def test_definition_patch_refuses_null_for_required_fields_but_allows_clearing_the_rule() -> None:
    # Given / When / Then
    with pytest.raises(ValidationError):
        StatusDefinitionPatch.model_validate({"rank": None})
    patch = StatusDefinitionPatch.model_validate({"rule": None})
    assert "rule" in patch.model_fields_set and patch.rule is None


def test_bulk_request_limits_and_needs_targets() -> None:
    # Given too many, or no, customers / Then the request is refused
    with pytest.raises(ValidationError, match="at most 10000"):
        BulkAssignment.model_validate(
            {"action": "assign", "customer_ids": ["a"] * 6000, "emails": ["b"] * 4001}
        )
    with pytest.raises(ValidationError, match="give customer_ids or emails"):
        BulkAssignment.model_validate({"action": "remove"})


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
    assert statuses.evaluate(rule(data), profile) is expected


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
    assert statuses.evaluate(data, {"program_status": "active", "attributes": {"instagram_followers": 20000}})
    assert not statuses.evaluate(
        data, {"program_status": "pending", "attributes": {"instagram_followers": 20000}}
    )
    assert statuses.evaluate(data, {"program_status": "pending", "attributes": {"tag": "press"}})


# --- rule-driven changes -----------------------------------------------------------------


def test_rule_changes_add_and_remove_rule_assignments_only() -> None:
    # Given a customer who gained followers, and one who lost them
    gained = {"attributes": {"instagram_followers": 50000}, "statuses": {}}
    lost = {"attributes": {"instagram_followers": 5}, "statuses": {"influencer": {"source": "rule"}}}
    manual = {"attributes": {"instagram_followers": 5}, "statuses": {"influencer": {"source": "manual"}}}
    # When rules are re-evaluated / Then the rule status is added or removed, manual is kept
    assert statuses.rule_changes(gained, DEFINITIONS) == statuses.RuleChanges(["influencer"], [])
    assert statuses.rule_changes(lost, DEFINITIONS) == statuses.RuleChanges([], ["influencer"])
    assert not statuses.rule_changes(manual, DEFINITIONS)


def test_rule_assignment_goes_when_its_rule_is_removed_but_not_when_its_definition_is_deleted() -> None:
    # Given a rule assignment
    profile = {"attributes": {"instagram_followers": 50000}, "statuses": {"influencer": {"source": "rule"}}}
    without_rule = {
        **DEFINITIONS,
        "influencer": {k: v for k, v in DEFINITIONS["influencer"].items() if k != "rule"},
    }
    deleted = {k: v for k, v in DEFINITIONS.items() if k != "influencer"}
    # Then a rule-less definition drops it, a deleted one leaves it to the removal job
    assert statuses.rule_changes(profile, without_rule).removed == ["influencer"]
    assert not statuses.rule_changes(profile, deleted)


def test_rule_changes_can_be_limited_to_some_codes() -> None:
    # Given a matching profile / When only other codes are looked at / Then nothing changes
    profile = {"attributes": {"instagram_followers": 50000}, "statuses": {}}
    assert not statuses.rule_changes(profile, DEFINITIONS, only=["vip"])


# --- ranking, re-ranking, entitlements ---------------------------------------------------


def test_ranked_orders_by_rank_hides_internal_and_deleted() -> None:
    # Given statuses assigned in any order, one of them no longer defined
    assigned = {"influencer": {}, "staff": {}, "vip": {}, "gone": {}}
    # Then back office sees all defined ones by rank, the customer only customer-facing ones
    assert [r.code for r in statuses.ranked(assigned, DEFINITIONS)] == ["vip", "staff", "influencer"]
    facing = statuses.ranked(assigned, DEFINITIONS, customer_facing_only=True)
    assert [r.code for r in facing] == ["vip", "influencer"] and statuses.best(facing) == "vip"
    assert statuses.status_order({"influencer": {}, "staff": {}}, DEFINITIONS) == ["staff", "influencer"]


def test_check_order_names_missing_unknown_and_duplicated_codes() -> None:
    # Given / When / Then
    assert statuses.check_order(["vip", "staff", "influencer"], DEFINITIONS) == {}
    assert statuses.check_order(["vip", "vip", "other"], DEFINITIONS) == {
        "missing": ["influencer", "staff"],
        "unknown": ["other"],
        "duplicated": ["vip"],
    }


def test_entitlements_best_wins_then_gaps_filled_by_rank() -> None:
    # Given VIP, Staff and Influencer assigned
    assigned = {"vip": {}, "staff": {}, "influencer": {}}
    # When entitlements are computed
    granted = {
        e.modifier: (e.value, e.granted_by) for e in statuses.entitlements(assigned, DEFINITIONS, "2030")
    }
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
    granted = statuses.entitlements(assigned, DEFINITIONS, "2026-01-01T00:00:00.000000Z")
    assert {e.granted_by for e in granted} == {"staff"}
    assert statuses.entitlements({}, DEFINITIONS, "2026") == []
