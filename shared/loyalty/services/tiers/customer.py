"""A customer's tier (read) and manual tier (set, end)."""

from __future__ import annotations

from datetime import UTC

from loyalty.domain import tiers
from loyalty.domain.clock import iso, now_iso
from loyalty.domain.errors import Conflict, NotFound, field_error
from loyalty.domain.principal import BACK_OFFICE, Principal, Role
from loyalty.domain.records import CatalogRecord, ProfileRecord
from loyalty.domain.tiers import ManualTier, TierRecord
from loyalty.repository import keys
from loyalty.repository import tiers as repo
from loyalty.repository.base import Transaction, TransactionCancelled, batch_get
from loyalty.repository.customers import strip_keys
from loyalty.repository.points import stage_profile_check
from loyalty.repository.ranked_statuses import catalog_of
from loyalty.schemas.customers import CustomerTier, ManualTierView, NextTierView
from loyalty.schemas.tiers import ManualTierSet
from loyalty.services.tiers.moves import holds, ladder_of, stage_outcome

ATTEMPTS = 3


def read(
    business_id: str, customer_id: str, consistent: bool = False
) -> tuple[ProfileRecord | None, TierRecord, CatalogRecord, str]:
    """The profile, tier record, catalog (with the ladder) and time zone: one BatchGetItem."""
    wanted = [
        keys.customer_key(business_id, customer_id),
        keys.tier_key(business_id, customer_id),
        keys.status_catalog_key(business_id),
        keys.points_settings_key(business_id),
    ]
    found = {i["SK"]: i for i in batch_get(wanted, consistent=consistent)}
    profile = found.get(keys.PROFILE_SK)
    record = found.get(keys.TIER_SK)
    settings = found.get(keys.POINTS_SETTINGS_SK) or {}
    return (
        strip_keys(profile) if profile else None,
        repo.or_empty(repo.record_of(record) if record else None, business_id, customer_id),
        catalog_of(found.get(keys.STATUS_CATALOG_SK)),
        str(settings.get("time_zone") or "UTC"),
    )


def tier_view(
    customer_id: str, record: TierRecord, catalog: CatalogRecord, time_zone: str, principal: Principal
) -> CustomerTier:
    ladder = ladder_of(catalog, time_zone)
    now = now_iso()
    if ladder is None:
        return CustomerTier(
            customer_id=customer_id,
            code=None,
            qualifying_value=0,
            basis=None,
            retained_until=None,
            next=None,
            manual=None,
        )
    code = record.get("effective")
    if principal.role is Role.CUSTOMER and code:
        definition = catalog["definitions"].get(code) or {}
        code = code if definition.get("customer_facing") else None  # as for any ranked status
    upcoming = tiers.next_tier(record, ladder, now)
    manual = tiers.manual_active(record, now)
    computed = record.get("tier")
    return CustomerTier(
        customer_id=customer_id,
        code=code,
        qualifying_value=tiers.qualifying_value(record, ladder, now),
        basis=ladder.basis,
        retained_until=computed["retained_until"] if computed else None,
        next=NextTierView(code=upcoming.code, missing=upcoming.missing) if upcoming else None,
        manual=ManualTierView(code=manual["code"], until=manual["until"], floor=bool(manual.get("floor")))
        if manual and principal.role is not Role.CUSTOMER
        else None,
    )


def get_tier(principal: Principal, customer_id: str) -> CustomerTier:
    principal.require_self_or(customer_id, BACK_OFFICE)
    profile, record, catalog, time_zone = read(principal.business_id, customer_id)
    if profile is None:
        raise NotFound("customer not found", {"customer_id": customer_id})
    return tier_view(customer_id, record, catalog, time_zone, principal)


def set_manual(principal: Principal, customer_id: str, body: ManualTierSet) -> CustomerTier:
    principal.require(BACK_OFFICE)
    if body.until.tzinfo is None:
        raise field_error("until", "give a time zone (e.g. 2030-01-01T00:00:00Z)")
    until = iso(body.until.astimezone(UTC))
    if until <= now_iso():
        raise field_error("until", "must be in the future")
    manual: ManualTier = {
        "code": body.code,
        "until": until,
        "floor": body.floor,
        "set_by": principal.sub,
        "set_at": now_iso(),
        "reason": body.reason,
    }
    return _change(principal, customer_id, manual)


def end_manual(principal: Principal, customer_id: str) -> CustomerTier:
    principal.require(BACK_OFFICE)
    return _change(principal, customer_id, None)


def _change(principal: Principal, customer_id: str, manual: ManualTier | None) -> CustomerTier:
    bid = principal.business_id
    for _ in range(ATTEMPTS):
        profile, record, catalog, time_zone = read(bid, customer_id, consistent=True)
        if profile is None:
            raise NotFound("customer not found", {"customer_id": customer_id})
        ladder = ladder_of(catalog, time_zone)
        if ladder is None:
            raise Conflict("this business has no tier ladder; PUT /v1/tiers first", {"field": "code"})
        if manual is not None and manual["code"] not in ladder.codes:
            raise field_error(
                "code", f"{manual['code']} is not a tier of the ladder ({', '.join(ladder.codes)})"
            )
        if manual is None and not record.get("manual"):
            raise NotFound("the customer has no manual tier", {"customer_id": customer_id})
        if manual is not None and not holds(profile):
            raise Conflict(
                f"a {profile['program_status']} customer cannot hold a tier",
                {"program_status": profile["program_status"]},
            )
        now = now_iso()
        ranks = tiers.ranks_of(catalog["definitions"])
        outcome = tiers.set_manual(record, manual, ladder, ranks, now, holds(profile))
        tx = Transaction()
        version = int(record.get("version") or 0)
        stored, staged = stage_outcome(
            tx, version, outcome, profile, catalog["definitions"], principal.as_actor_record(), now
        )
        if staged is None:
            stage_profile_check(tx, profile)  # what was decided on (its program status) still holds
        try:
            tx.commit()
        except TransactionCancelled:
            continue  # a purchase or the check moved it first: decide again on fresh data
        return tier_view(customer_id, stored, catalog, time_zone, principal)
    raise Conflict("the customer's tier kept changing; retry", {"customer_id": customer_id})
