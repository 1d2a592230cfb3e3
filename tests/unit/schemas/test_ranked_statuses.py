"""The rule language's shape and the ranked-status requests (loyalty.schemas.ranked_statuses)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loyalty.domain.ranked_statuses import MAX_RULE_DEPTH
from loyalty.schemas.ranked_statuses import (
    BulkAssignment,
    Rule,
    StatusDefinitionCreate,
    StatusDefinitionPatch,
    check_rule_size,
)


def error_locs(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(data)
    return [tuple(e["loc"]) for e in caught.value.errors()]


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
    for _ in range(MAX_RULE_DEPTH):
        node = {"all": [node]}
    parsed = Rule.model_validate(node)
    # When its size is checked / Then it is refused
    with pytest.raises(ValueError, match="nests at most"):
        check_rule_size(parsed)


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
