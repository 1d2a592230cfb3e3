"""Entitlements: the modifiers in force for a customer (policy in loyalty.domain.ranked_statuses)."""

from __future__ import annotations

from dataclasses import replace

from loyalty.domain import ranked_statuses
from loyalty.domain.clock import now_iso
from loyalty.domain.principal import Principal, Role
from loyalty.repository import ranked_statuses as repo
from loyalty.schemas.customers import StatusRef
from loyalty.schemas.ranked_statuses import (
    Entitlements,
)
from loyalty.services.customers import visible_profile


def get_entitlements(principal: Principal, customer_id: str) -> Entitlements:
    """Modifiers in force (ranked_statuses.entitlements documents the policy).

    A customer sees the statuses they may see; a modifier granted by a status that is
    not customer-facing still applies, but its code is not shown to them.
    """
    profile = visible_profile(principal, customer_id)
    catalog = repo.get_catalog(principal.business_id)
    definitions = catalog["definitions"]
    at = now_iso()
    assigned = profile.get("statuses") or {}
    live = {c: a for c, a in assigned.items() if not a.get("expires_at") or str(a["expires_at"]) > at}
    customer_view = principal.role is Role.CUSTOMER
    refs = ranked_statuses.ranked(live, definitions, customer_facing_only=customer_view)
    granted = ranked_statuses.entitlements(live, definitions, at)

    def shown(code: str | None) -> str | None:
        visible = code is not None and (not customer_view or definitions.get(code, {}).get("customer_facing"))
        return code if visible else None

    return Entitlements(
        customer_id=customer_id,
        best_status=ranked_statuses.best(refs),
        statuses=[StatusRef.model_validate(r) for r in refs],
        modifiers={e.modifier: e.value for e in granted},
        entitlements=[replace(e, granted_by=shown(e.granted_by)) for e in granted],
    )
