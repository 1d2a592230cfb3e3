"""Ranked statuses (docs/design.md#ranked-statuses): ordering, the best status, evaluating the
rule language, rule-driven changes, entitlements and re-ranking. Pure: no I/O.

A business's ranked statuses (VIP, Staff, Influencer...) are labels apart from the
program status (the lifecycle in loyalty.domain.lifecycle). The rule language's shape is
validated by loyalty.schemas.ranked_statuses.Rule; here stored rules are evaluated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RankedStatus:
    """A ranked status a customer holds, as shown: its definition's name and rank."""

    code: str
    name: str
    rank: int
    expires_at: str | None = None


def ranked(
    assigned: Mapping[str, Mapping[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]],
    customer_facing_only: bool = False,
) -> list[RankedStatus]:
    """Assigned statuses that still have a definition, ordered by rank (1 first)."""
    refs = []
    for code, assignment in assigned.items():
        definition = definitions.get(code)
        if definition is None:
            continue  # definition deleted: its assignments are being cleaned up
        if customer_facing_only and not definition.get("customer_facing", False):
            continue
        refs.append(
            RankedStatus(
                code=code,
                name=str(definition.get("name", code)),
                rank=int(definition["rank"]),
                expires_at=assignment.get("expires_at"),
            )
        )
    return sorted(refs, key=lambda r: r.rank)


def best(refs: list[RankedStatus]) -> str | None:
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
        "created_at",
        "invitation_count",
    }
)
# A status code: a case-sensitive slug (letters, digits, `_`, `-`), used in keys and URLs.
STATUS_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ORDERED_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
MAX_RULE_DEPTH = 5
MAX_RULE_CONDITIONS = 50
MAX_IN_VALUES = 100

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
    """A modifier in force and the ranked status that grants it (None: hidden from a customer
    because that status is not customer-facing)."""

    modifier: str
    value: Any
    granted_by: str | None


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
