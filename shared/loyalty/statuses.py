"""Ranked statuses (DESIGN.md "Statuses"): ordering, the best status, the rule language and
entitlements. Pure: no I/O, unit-tested in tests/unit/test_statuses_rules.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loyalty.models import StatusRef


def ranked(
    assigned: Mapping[str, Mapping[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]],
    customer_facing_only: bool = False,
) -> list[StatusRef]:
    """Assigned statuses that still have a definition, ordered by rank (1 first)."""
    refs = []
    for code, assignment in assigned.items():
        definition = definitions.get(code)
        if definition is None:
            continue  # definition deleted: its assignments are being cleaned up
        if customer_facing_only and not definition.get("customer_facing", False):
            continue
        refs.append(
            StatusRef(
                code=code,
                name=str(definition.get("name", code)),
                rank=int(definition["rank"]),
                expires_at=assignment.get("expires_at"),
            )
        )
    return sorted(refs, key=lambda r: r.rank)


def best(refs: list[StatusRef]) -> str | None:
    return refs[0].code if refs else None


# --- the rule language -------------------------------------------------------------------
#
# A rule is a condition `{attribute, operator, value}` or a group `{all: [...]}` /
# `{any: [...]}`. It is data, evaluated here without eval() or expressions from
# callers, so a business cannot run code, only compare values it already stores.
#
# `attribute` names a profile field from RULE_FIELDS, or a custom attribute: either
# `attributes.<key>` or a bare `<key>` that is not a profile field.
# Semantics: a missing value, or a value of another type than the rule's, makes the
# condition false (except `exists: false`), so a rule never fails at evaluation time.

RULE_FIELDS = frozenset(
    {
        "program_status",
        "email",
        "phone",
        "first_name",
        "last_name",
        "external_id",
        "marketing_consent",
        "balance",
        "created_at",
        "invitation_count",
    }
)
ORDERED_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
MAX_RULE_DEPTH = 5
MAX_RULE_CONDITIONS = 50
MAX_IN_VALUES = 100

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool
AttributePath = Annotated[str, StringConstraints(pattern=r"^(attributes\.)?[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Rule(BaseModel):
    """One node of a rule: a condition or an `all` / `any` group (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    attribute: AttributePath | None = None
    operator: Operator | None = None
    # validate_default: `{"operator": "eq"}` without a value must fail too.
    value: Scalar | list[Scalar] | None = Field(default=None, validate_default=True)
    all: list[Rule] | None = Field(default=None, min_length=1, max_length=MAX_RULE_CONDITIONS)
    any: list[Rule] | None = Field(default=None, min_length=1, max_length=MAX_RULE_CONDITIONS)

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        operator = info.data.get("operator")
        if operator is None:
            return value  # the operator's own error (or a group) is reported instead
        if operator == "exists":
            if value is not None and not isinstance(value, bool):
                raise ValueError("exists takes true or false")
        elif operator == "in":
            if not isinstance(value, list) or not value:
                raise ValueError("in takes a non-empty list of values")
            if len(value) > MAX_IN_VALUES:
                raise ValueError(f"in takes at most {MAX_IN_VALUES} values")
        elif operator in ORDERED_OPERATORS:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{operator} takes a number or a string")
        elif value is None or isinstance(value, list):
            raise ValueError(f"{operator} takes one value (a string, number or boolean)")
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> Rule:
        shapes = [
            name
            for name, present in (
                ("condition", self.attribute is not None or self.operator is not None),
                ("all", self.all is not None),
                ("any", self.any is not None),
            )
            if present
        ]
        if len(shapes) != 1:
            raise ValueError("a rule is either {attribute, operator, value}, {all: [...]} or {any: [...]}")
        if shapes == ["condition"]:
            if self.attribute is None:
                raise ValueError("attribute is required")
            if self.operator is None:
                raise ValueError("operator is required")
        elif self.value is not None:
            raise ValueError("a group takes no value")
        return self

    def depth(self) -> int:
        children = self.all or self.any or []
        return 1 + max((c.depth() for c in children), default=0)

    def conditions(self) -> int:
        children = self.all or self.any
        return sum(c.conditions() for c in children) if children else 1


def check_rule_size(rule: Rule) -> Rule:
    """Bounds that keep evaluating a rule over every customer cheap."""
    if rule.depth() > MAX_RULE_DEPTH:
        raise ValueError(f"a rule nests at most {MAX_RULE_DEPTH} levels")
    if rule.conditions() > MAX_RULE_CONDITIONS:
        raise ValueError(f"a rule holds at most {MAX_RULE_CONDITIONS} conditions")
    return rule


def rule_to_data(rule: Rule) -> dict[str, Any]:
    """The stored form (plain JSON): what `evaluate` reads."""
    return rule.model_dump(exclude_none=True)


_MISSING = object()


def _lookup(profile: Mapping[str, Any], attribute: str) -> Any:
    attributes = profile.get("attributes") or {}
    if attribute.startswith("attributes."):
        return attributes.get(attribute.removeprefix("attributes."), _MISSING)
    if attribute in RULE_FIELDS:
        value = profile.get(attribute)
        return _MISSING if value is None else value
    return attributes.get(attribute, _MISSING)


def _same_kind(left: Any, right: Any) -> bool:
    """Numbers compare with numbers, strings with strings, booleans only with booleans."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return True
    return type(left) is type(right)


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    if operator == "in":
        return any(_same_kind(actual, v) and actual == v for v in expected)
    if not _same_kind(actual, expected):
        return operator == "ne"
    if operator == "eq":
        return bool(actual == expected)
    if operator == "ne":
        return bool(actual != expected)
    if operator == "gt":
        return bool(actual > expected)
    if operator == "gte":
        return bool(actual >= expected)
    if operator == "lt":
        return bool(actual < expected)
    if operator == "lte":
        return bool(actual <= expected)
    raise ValueError(f"unknown operator {operator!r}")  # stored rules were validated


def evaluate(rule: Mapping[str, Any], profile: Mapping[str, Any]) -> bool:
    """Whether a stored rule (see `rule_to_data`) holds for a profile."""
    if "all" in rule:
        return all(evaluate(child, profile) for child in rule["all"])
    if "any" in rule:
        return any(evaluate(child, profile) for child in rule["any"])
    actual = _lookup(profile, rule["attribute"])
    operator = rule["operator"]
    if operator == "exists":
        return (actual is not _MISSING) == rule.get("value", True)
    if actual is _MISSING:
        return False
    return _compare(operator, actual, rule.get("value"))


# --- rule-driven assignments -------------------------------------------------------------


@dataclass(frozen=True)
class RuleChanges:
    added: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def rule_changes(
    profile: Mapping[str, Any],
    definitions: Mapping[str, Mapping[str, Any]],
    only: Iterable[str] | None = None,
) -> RuleChanges:
    """Which rule-driven statuses a profile gains and loses.

    A manual assignment is never touched: a rule neither removes it nor turns it into a
    rule assignment. A rule assignment whose definition no longer has a rule is removed
    (nothing supports it any more). `only` restricts the codes looked at.
    """
    assigned: Mapping[str, Mapping[str, Any]] = profile.get("statuses") or {}
    codes = sorted(set(only) if only is not None else set(definitions) | set(assigned))
    added, removed = [], []
    for code in codes:
        definition = definitions.get(code)
        current = assigned.get(code)
        if current is not None and current.get("source") != "rule":
            continue
        rule = definition.get("rule") if definition else None
        holds = bool(rule) and evaluate(rule or {}, profile)
        if holds and current is None:
            added.append(code)
        elif not holds and current is not None and definition is not None:
            removed.append(code)
    return RuleChanges(added, removed)


def status_order(
    assigned: Mapping[str, Mapping[str, Any]], definitions: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Codes held, best first: stored on the profile so a re-rank shows up in its stream."""
    return [ref.code for ref in ranked(assigned, definitions)]


# --- entitlements ------------------------------------------------------------------------
#
# Policy (documented for the README): the best status wins. Each modifier comes from the
# best-ranked assigned status that SETS it (a value that is not null); a modifier the best
# status leaves unset is filled from the next status by rank that sets it. An explicit
# value (including `false` or `0`) counts as set, so a status can deliberately switch a
# modifier off for its holders. Expired assignments grant nothing.

MODIFIERS = ("reward_expiry_extra_days", "discount_percent", "tier_points_multiplier", "free_delivery")


@dataclass(frozen=True)
class Entitlement:
    modifier: str
    value: Any
    granted_by: str


def entitlements(
    assigned: Mapping[str, Mapping[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]],
    at: str,
) -> list[Entitlement]:
    """Modifiers in force at `at` (ISO time), each with the status that grants it."""
    live = {code: a for code, a in assigned.items() if not a.get("expires_at") or str(a["expires_at"]) > at}
    granted: dict[str, Entitlement] = {}
    for ref in ranked(live, definitions):
        modifiers = definitions[ref.code].get("modifiers") or {}
        for name in MODIFIERS:
            if name not in granted and modifiers.get(name) is not None:
                granted[name] = Entitlement(name, modifiers[name], ref.code)
    return [granted[name] for name in MODIFIERS if name in granted]


# --- re-ranking --------------------------------------------------------------------------


def check_order(codes: list[str], defined: Iterable[str]) -> dict[str, list[str]]:
    """Problems of a re-ranking: codes missing, unknown or listed twice (empty when fine)."""
    known = set(defined)
    duplicated = sorted(code for code, n in Counter(codes).items() if n > 1)
    problems = {
        "missing": sorted(known - set(codes)),
        "unknown": sorted(set(codes) - known),
        "duplicated": duplicated,
    }
    return {k: v for k, v in problems.items() if v}
