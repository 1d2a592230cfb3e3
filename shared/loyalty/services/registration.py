"""Registration and anonymous sign-up (docs/design.md#program-status-lifecycle: `register`,
`anonymous_signup`).

Registration makes one profile `active`: the caller's own (customer role), a named
anonymous or imported one, the one that already holds the e-mail, or a new one. With a
card it also takes the card from its `new` virtual owner; everything, including the
merge and lifting a suppression, is one TransactWriteItems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty.domain import cards
from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.errors import Duplicate, NotFound
from loyalty.domain.lifecycle import AuditKind, LifecycleEvent, ProgramStatus, apply, sources_of
from loyalty.domain.principal import Principal, Role
from loyalty.domain.records import CardRecord, ProfileRecord, updated
from loyalty.repository import cards as card_repo
from loyalty.repository import customers as customer_repo
from loyalty.repository import keys
from loyalty.repository.base import Transaction
from loyalty.schemas.customers import Customer
from loyalty.schemas.registration import AnonymousSignup, Registration
from loyalty.services.cards import binding_details, commit, load_bindable, retrying, stage_merge
from loyalty.services.customers import new_profile, to_customer


@dataclass(frozen=True)
class Registered:
    """The registered customer, and whether registration created the profile."""

    customer: Customer
    created: bool


_PERSONAL = ("email", "phone", "first_name", "last_name", "external_id", "marketing_consent")


def _registrable(status: str) -> bool:
    return ProgramStatus(status) in sources_of(LifecycleEvent.REGISTER)


def _resolve(principal: Principal, body: Registration) -> ProfileRecord | None:
    """The existing profile this registration activates, or None to create one."""
    bid = principal.business_id
    wanted = body.customer_id
    if principal.role is Role.CUSTOMER:
        # A customer registers only themself: their token's sub is their customer id.
        if wanted and wanted != principal.sub:
            raise NotFound("customer not found", {"customer_id": wanted})
        wanted = principal.sub
    if wanted:
        profile = customer_repo.get_profile(bid, wanted, consistent=True)
        if profile is not None:
            return profile
        if principal.role is not Role.CUSTOMER:
            raise NotFound("customer not found", {"customer_id": wanted})
    if body.email:
        owner_id = customer_repo.find_by_identifier(bid, "email", body.email)
        owner = customer_repo.get_profile(bid, owner_id, consistent=True) if owner_id else None
        if owner is not None:
            if not _registrable(owner["program_status"]):
                raise Duplicate(
                    f"a {owner['program_status']} customer already has this email",
                    {"field": "email", "program_status": owner["program_status"]},
                )
            return owner
    return None


def _lift_suppression(profile: ProfileRecord) -> Any:
    """Registering is the person's own request to come back: drop their suppression items."""
    bid = profile["business_id"]
    suppressions = [
        keys.suppression_key_of(bid, kind, profile[kind])
        for kind in customer_repo.IDENTIFIERS
        if profile.get(kind)
    ]

    def extra(tx: Transaction) -> None:
        for key in suppressions:
            tx.delete(key)

    return extra


def register(principal: Principal, body: Registration) -> Registered:
    def attempt() -> Registered:
        bid = principal.business_id
        before = _resolve(principal, body)
        current = ProgramStatus(before["program_status"]) if before else None
        status = apply(LifecycleEvent.REGISTER, current, principal.actor)
        at = now_iso()
        fields = {k: v for k, v in body.model_dump(include=set(_PERSONAL)).items() if v is not None}
        if before is None:
            after = new_profile(bid, fields, status)
            if principal.role is Role.CUSTOMER:
                after["customer_id"] = principal.sub
        else:
            after = updated(before, {**fields, "program_status": status.value})
        after["registered_at"] = at
        if body.terms_version:
            after["terms_version"], after["terms_accepted_at"] = body.terms_version, at
        details: dict[str, Any] = {"fields": sorted(fields)}
        if body.terms_version:
            details["terms_version"] = body.terms_version

        bindable = binding = None
        if body.card_number:
            bindable = load_bindable(bid, body.card_number)
            if bindable.card["customer_id"] != after["customer_id"]:  # not already theirs
                binding = cards.plan_binding(bindable.card, bindable.owner, after, at)
                after = binding.target
                details.update(binding_details(binding))

        tx = Transaction()
        entry = customer_repo.AuditEntry(
            AuditKind.REGISTER,
            principal.as_actor_record(),
            current.value if current else None,
            status.value,
            details=details,
        )
        write = customer_repo.Write(after=after, before=before, entry=entry, extra=_lift_suppression(after))
        stored = customer_repo.stage(tx, write, at)
        race: set[int] = set()
        if bindable is not None and binding is not None:
            race = stage_merge(tx, principal, bindable, binding, at).indexes
        commit(tx, after["customer_id"], race)
        return Registered(to_customer(stored, principal), created=before is None)

    return retrying(attempt)


def anonymous_signup(principal: Principal, body: AnonymousSignup) -> Customer:
    status = apply(LifecycleEvent.ANONYMOUS_SIGNUP, None, principal.actor)
    bid = principal.business_id
    # The app's token names the customer; a service signing up devices gets fresh ids.
    customer_id = principal.sub if principal.role is Role.CUSTOMER else new_id()
    if customer_repo.get_profile(bid, customer_id, consistent=True) is not None:
        raise Duplicate("this customer already has a profile", {"customer_id": customer_id})
    at = now_iso()
    fields = body.model_dump(exclude_none=True, exclude={"virtual_card"})
    profile = new_profile(bid, fields, status)
    profile["customer_id"] = customer_id
    card: CardRecord | None = None
    if body.virtual_card:
        # Always allowed: a virtual card is bound to its anonymous holder from the start.
        number = cards.virtual_card_number()
        card = {
            "business_id": bid,
            "number": number,
            "state": "activated",
            "customer_id": customer_id,
            "virtual": True,
            "created_at": at,
            "updated_at": at,
        }
        profile["cards"] = [{"number": number, "state": "activated"}]

    def extra(tx: Transaction) -> None:
        if card is not None:
            card_repo.stage(tx, card, None)

    entry = customer_repo.AuditEntry(
        AuditKind.ANONYMOUS_SIGNUP,
        principal.as_actor_record(),
        None,
        status.value,
        details={"card_number": card["number"]} if card else {},
    )
    stored = customer_repo.commit(
        customer_repo.Write(
            after=profile,
            entry=entry,
            extra=extra,
            check_suppression=True,
            identifiers=(*customer_repo.IDENTIFIERS, "device_id"),
        )
    )
    return to_customer(stored, principal)
