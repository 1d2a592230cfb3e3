"""What a customer may see of their own history (docs/design.md#trust-and-identity): the
customer-facing facts only. No staff ids, no staff reasons, no ranked status that is not
customer-facing; the business sees everything."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from loyalty.domain.lifecycle import AuditKind

# Details a customer may read: card numbers, what kind of e-mail, field names changed.
_SHOWN_DETAILS = frozenset(
    {"card_number", "replaced_card_number", "kind", "terms_version", "fields", "via", "erased_fields"}
)
# Details that name ranked statuses: shown filtered to the customer-facing ones.
_STATUS_DETAILS = ("code", "codes", "added", "removed", "statuses_added", "statuses_removed", "best_status")
_RANKED_KINDS = frozenset(
    {
        AuditKind.STATUS_ASSIGNED,
        AuditKind.STATUS_REMOVED,
        AuditKind.STATUS_EXPIRED,
        AuditKind.STATUSES_EVALUATED,
        AuditKind.STATUSES_RERANKED,
    }
)


def customer_view(event: Mapping[str, Any], facing: Collection[str]) -> dict[str, Any] | None:
    """The event as its customer sees it, or None when nothing in it is theirs to see."""
    details = dict(event.get("details") or {})
    shown: dict[str, Any] = {k: v for k, v in details.items() if k in _SHOWN_DETAILS}
    any_status = False
    for key in _STATUS_DETAILS:
        value = details.get(key)
        if isinstance(value, str):
            if value in facing:
                shown[key], any_status = value, True
        elif isinstance(value, list):
            kept = [code for code in value if code in facing]
            if kept:
                shown[key], any_status = kept, True
    if event.get("event") in _RANKED_KINDS and not any_status:
        return None  # a change to statuses the customer is not shown
    actor = event.get("actor") or {}
    return {
        **event,
        "actor": {"role": str(actor.get("role", ""))},  # never a staff user's id
        "reason": None,  # staff notes are the business's own
        "details": shown,
    }
