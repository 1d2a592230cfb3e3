"""The tier ladder: kept in the ranked-status catalog item, so a ladder change, a re-rank and
a definition change are each one conditional write, and the thresholds' order by rank is
checked in that same write. Changing the ladder moves nobody: see `evaluation`."""

from __future__ import annotations

from typing import Any

from loyalty.domain import tiers
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import Conflict, ValidationFailed
from loyalty.domain.principal import ADMINS, BACK_OFFICE, Principal
from loyalty.domain.records import CatalogRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository.ranked_statuses import get_catalog
from loyalty.schemas.tiers import TierLadder, TierLadderView, TierStep
from loyalty.services.ranked_statuses.definitions import CatalogChange, change_catalog


class TierStatus(Conflict):
    """A tier code used where only an ordinary ranked status may be."""

    code = "tier_status"


def view(catalog: CatalogRecord) -> TierLadderView:
    stored: dict[str, Any] = dict(catalog.get("tiers") or {})
    ranks = tiers.ranks_of(catalog["definitions"])
    steps = sorted(stored.get("tiers") or [], key=lambda t: -ranks.get(str(t["code"]), 0))
    return TierLadderView.model_validate(
        {**stored, "tiers": [TierStep.model_validate(t) for t in steps]} if stored else {}
    )


def get_ladder(principal: Principal) -> TierLadderView:
    principal.require(BACK_OFFICE)
    return view(get_catalog(principal.business_id))


def require_fits(ladder: dict[str, Any] | None, definitions: dict[str, Any]) -> None:
    """422 naming each field of a ladder that does not fit the catalog."""
    problems = tiers.ladder_problems((ladder or {}).get("tiers") or [], definitions)
    if problems:
        raise ValidationFailed(
            "; ".join(f"{f}: {m}" for f, m in problems), [{"field": f, "message": m} for f, m in problems]
        )


def _no_ordinary_holders(business_id: str, code: str) -> None:
    # A code held by hand or by a rule cannot become a tier (a customer holds one tier).
    holders = customers_repo.list_status_holders(business_id, code, 25, None).items
    if any(h.get("source") != "tier" for h in holders):
        raise TierStatus(
            f"status {code} is assigned to customers as an ordinary status; remove those first",
            {"field": "tiers", "code": code},
        )


def put_ladder(principal: Principal, body: TierLadder) -> TierLadderView:
    principal.require(ADMINS)
    bid = principal.business_id
    steps = [
        {"code": t.code, "attain": str(t.attain), "maintain": str(t.maintain)}
        for t in sorted(body.tiers, key=lambda t: t.attain)
    ]
    checked: set[str] = set()

    def mutate(catalog: CatalogRecord) -> CatalogChange:
        current = dict(catalog.get("tiers") or {})
        ladder: dict[str, Any] = {
            **body.model_dump(mode="json", exclude={"tiers"}),
            "tiers": steps,
            "version": int(current.get("version") or 0) + 1,
            "updated_at": now_iso(),
        }
        require_fits(ladder, dict(catalog["definitions"]))
        for code in tiers.codes_of(ladder) - tiers.codes_of(current) - checked:
            _no_ordinary_holders(bid, code)
            checked.add(code)
        return CatalogChange(dict(catalog["definitions"]), tiers=ladder, set_tiers=True)

    stored, _ = change_catalog(bid, principal.as_actor_record(), mutate)
    return view(stored)


def refuse_tier_code(catalog: CatalogRecord, code: str) -> None:
    """Tiers are reached (or set as a manual tier), never assigned or removed as a status."""
    if code in tiers.codes_of(catalog.get("tiers")):
        raise TierStatus(
            f"status {code} is a tier: reached by its thresholds, or set by PUT /v1/customers/{{id}}/tier",
            {"field": "code", "code": code},
        )
