"""Applying ranked-status changes to a profile: rule re-evaluation and the stored order.

Kept apart from the other ranked-status use cases so services.customers (PATCH re-evaluates rules) can
use it without an import cycle. A profile that holds statuses also stores `best_status`
and `status_order` (codes best first): a re-rank then changes the profile item, so the
stream (and the `customer.statuses_changed` webhook) carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.domain import ranked_statuses
from loyalty.domain.clock import now_iso
from loyalty.domain.principal import RULES_ACTOR
from loyalty.domain.records import Assignment, ProfileRecord
from loyalty.repository import ranked_statuses as statuses_repo
from loyalty.repository.base import Transaction


@dataclass
class StatusUpdate:
    """A profile with new statuses, and the assignment items to write with it."""

    after: ProfileRecord
    put: list[str]
    delete: list[str]

    def stage(self, tx: Transaction) -> None:
        statuses_repo.stage_assignments(tx, self.after, self.put, self.delete)

    @property
    def extra(self) -> Callable[[Transaction], None] | None:
        return self.stage if (self.put or self.delete) else None


def with_statuses(
    profile: ProfileRecord,
    assigned: Mapping[str, Assignment],
    definitions: Mapping[str, Mapping[str, Any]],
) -> ProfileRecord:
    """The profile holding `assigned`, with `best_status` and `status_order` derived from it."""
    order = ranked_statuses.status_order(assigned, definitions)
    after = profile.copy()
    after["statuses"] = {code: a.copy() for code, a in assigned.items()}
    after["status_order"] = order
    after["best_status"] = order[0] if order else None
    return after


def order_is_current(profile: Mapping[str, Any], definitions: Mapping[str, Mapping[str, Any]]) -> bool:
    order = ranked_statuses.status_order(profile.get("statuses") or {}, definitions)
    return (profile.get("status_order") or []) == order and profile.get("best_status") == (
        order[0] if order else None
    )


def apply_rules(
    profile: ProfileRecord,
    definitions: Mapping[str, Mapping[str, Any]],
    only: list[str] | None = None,
    at: str | None = None,
) -> tuple[ranked_statuses.RuleChanges, StatusUpdate]:
    """Re-evaluate the rules for `profile` (e.g. the result of a PATCH before it is stored).

    Manual assignments are never touched (ranked_statuses.rule_changes).
    """
    changes = ranked_statuses.rule_changes(profile, definitions, only)
    assigned = dict(profile.get("statuses") or {})
    for code in changes.removed:
        assigned.pop(code, None)
    for code in changes.added:
        assigned[code] = {"source": "rule", "assigned_by": RULES_ACTOR["sub"], "assigned_at": at or now_iso()}
    after = with_statuses(profile, assigned, definitions) if (changes or assigned) else profile.copy()
    return changes, StatusUpdate(after, changes.added, changes.removed)
