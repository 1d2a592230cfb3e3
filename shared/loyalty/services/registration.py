"""Registration and anonymous sign-up (DESIGN.md `register`, `anonymous sign-up`).

Registration makes one profile `active`: the caller's own (customer role), a named
anonymous or imported one, the one that already holds the e-mail, or a new one. With a
card it also takes the card from its `new` virtual owner; everything, including the
merge and lifting a suppression, is one TransactWriteItems.
"""

from __future__ import annotations

from typing import Any

from loyalty import card_rules, keys
from loyalty.auth import Principal, Role
from loyalty.clock import new_id, now_iso
from loyalty.errors import Duplicate, NotFound
from loyalty.lifecycle import Event, ProgramStatus, apply, sources_of
from loyalty.models import Customer
from loyalty.registration_models import AnonymousSignup, Registration
from loyalty.repository import cards as card_repo
from loyalty.repository import customers as customer_repo
from loyalty.repository.base import Transaction
from loyalty.services.cards import binding_details, commit, load_bindable, retrying, stage_merge
from loyalty.services.customers import new_profile, to_customer
from loyalty.suppression import identifier_hash

_PERSONAL = ("email", "phone", "first_name", "last_name", "external_id", "marketing_consent")


def _registrable(status: str) -> bool:
    return ProgramStatus(status) in sources_of(Event.REGISTER)


def _resolve(principal: Principal, body: Registration) -> dict[str, Any] | None:
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


def _lift_suppression(profile: dict[str, Any]) -> Any:
    """Registering is the person's own request to come back: drop their suppression items."""
    bid = profile["business_id"]
    hashes = [
        identifier_hash(bid, kind, profile[kind]) for kind in customer_repo.IDENTIFIERS if profile.get(kind)
    ]

    def extra(tx: Transaction) -> None:
        for digest in hashes:
            tx.delete(keys.suppression_key(bid, digest))

    return extra


def register(principal: Principal, body: Registration) -> tuple[Customer, int]:
    def attempt() -> tuple[Customer, int]:
        bid = principal.business_id
        before = _resolve(principal, body)
        current = ProgramStatus(before["program_status"]) if before else None
        status = apply(Event.REGISTER, current, principal.actor)
        at = now_iso()
        fields = {k: v for k, v in body.model_dump(include=set(_PERSONAL)).items() if v is not None}
        if before is None:
            after = new_profile(bid, fields, status)
            if principal.role is Role.CUSTOMER:
                after["customer_id"] = principal.sub
        else:
            after = {**before, **fields, "program_status": status.value}
        after["registered_at"] = at
        if body.terms_version:
            after.update(terms_version=body.terms_version, terms_accepted_at=at)
        details: dict[str, Any] = {"fields": sorted(fields)}
        if body.terms_version:
            details["terms_version"] = body.terms_version

        bindable = binding = None
        if body.card_number:
            bindable = load_bindable(bid, body.card_number)
            if bindable.card["customer_id"] != after["customer_id"]:  # not already theirs
                binding = card_rules.plan_binding(bindable.card, bindable.owner, after, at)
                after = binding.target
                details.update(binding_details(binding))

        tx = Transaction()
        entry = customer_repo.AuditEntry(
            Event.REGISTER.value,
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
        return to_customer(stored, principal), 201 if before is None else 200

    return retrying(attempt)


def anonymous_signup(principal: Principal, body: AnonymousSignup) -> Customer:
    status = apply(Event.ANONYMOUS_SIGNUP, None, principal.actor)
    bid = principal.business_id
    # The app's token names the customer; a service signing up devices gets fresh ids.
    customer_id = principal.sub if principal.role is Role.CUSTOMER else new_id()
    if customer_repo.get_profile(bid, customer_id, consistent=True) is not None:
        raise Duplicate("this customer already has a profile", {"customer_id": customer_id})
    at = now_iso()
    fields = body.model_dump(exclude_none=True, exclude={"virtual_card"})
    profile = new_profile(bid, fields, status)
    profile["customer_id"] = customer_id
    card: dict[str, Any] | None = None
    if body.virtual_card:
        # Always allowed: a virtual card is bound to its anonymous holder from the start.
        number = card_rules.virtual_card_number()
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
        Event.ANONYMOUS_SIGNUP.value,
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
    return to_customer(stored, principal, {"definitions": {}})
