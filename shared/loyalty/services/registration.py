"""Registration and anonymous sign-up (docs/design.md#program-status-lifecycle: `register`,
`anonymous_signup`; docs/design.md#trust-and-identity).

Registration makes one profile `active`. Staff at the counter may name it (by id or by the
e-mail it holds); a customer activates their own profile, or takes over an existing one only
with proof (an invitation token, or a verified e-mail or phone from their identity
provider), otherwise a new profile of their own. With a card it also takes the card from
its `new` virtual owner (a customer needs the secret printed with it); everything,
including the merge and lifting a suppression, is one TransactWriteItems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loyalty.domain import cards
from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.errors import Duplicate, NotFound, field_error
from loyalty.domain.invitations import token_hash, token_problem
from loyalty.domain.lifecycle import AuditKind, LifecycleEvent, ProgramStatus, apply, sources_of
from loyalty.domain.principal import Principal, Role
from loyalty.domain.records import CardRecord, ProfileRecord, Provenance, updated, with_sources
from loyalty.observability import CUSTOMERS_CREATED, count
from loyalty.repository import cards as card_repo
from loyalty.repository import customers as customer_repo
from loyalty.repository import invitations as invitations_repo
from loyalty.repository.base import Transaction
from loyalty.schemas.customers import Customer
from loyalty.schemas.registration import AnonymousSignup, Registration
from loyalty.services.cards import (
    binding_details,
    commit,
    load_bindable,
    prove_card,
    retrying,
    stage_merge,
)
from loyalty.services.customers import new_profile, to_customer


@dataclass(frozen=True)
class Registered:
    """The registered customer, and whether registration created the profile."""

    customer: Customer
    created: bool


_PERSONAL = ("email", "phone", "first_name", "last_name", "external_id", "marketing_consent")
_PROVABLE = ("email", "phone")


def _registrable(status: str) -> bool:
    return ProgramStatus(status) in sources_of(LifecycleEvent.REGISTER)


@dataclass(frozen=True)
class Claim:
    """The existing profile a registration takes over, and the proof it rests on."""

    profile: ProfileRecord | None
    token_hash: str | None = None  # an invitation token consumed by this registration


def _by_identifier(business_id: str, kind: str, value: str) -> ProfileRecord | None:
    owner_id = customer_repo.find_by_identifier(business_id, kind, value)
    return customer_repo.get_profile(business_id, owner_id, consistent=True) if owner_id else None


def _proven_claim(principal: Principal, body: Registration) -> Claim:
    """A customer without a profile of their own may take over an existing one only with
    proof it is theirs: the invitation token sent to it, or the identity provider's
    verified e-mail or phone matching it. Without proof, nothing is linked."""
    bid = principal.business_id
    if body.invitation_token:
        hashed = token_hash(body.invitation_token)
        record = invitations_repo.get_token(hashed)
        profile = (
            customer_repo.get_profile(bid, record["customer_id"], consistent=True)
            if record is not None and record.get("business_id") == bid
            else None
        )
        if record is None or profile is None:
            raise NotFound("unknown invitation link", {"field": "invitation_token"})
        problem = token_problem(record, profile, now_iso())
        if problem is not None:
            raise problem
        return Claim(profile, hashed)
    for kind in _PROVABLE:
        value = getattr(body, kind)
        if value and principal.owns(kind, value):
            owner = _by_identifier(bid, kind, value)
            if owner is not None and _registrable(owner["program_status"]):
                return Claim(owner)
    return Claim(None)


def _resolve(principal: Principal, body: Registration) -> Claim:
    """The existing profile this registration activates (None: create one)."""
    bid = principal.business_id
    if principal.role is Role.CUSTOMER:
        # A customer registers only themself: their token's sub is their customer id.
        if body.customer_id and body.customer_id != principal.sub:
            raise NotFound("customer not found", {"customer_id": body.customer_id})
        if body.external_id is not None:
            raise field_error("external_id", "is set by the business; a customer cannot set it")
        own = customer_repo.get_profile(bid, principal.sub, consistent=True)
        return Claim(own) if own is not None else _proven_claim(principal, body)
    # Staff at the counter (or an integration) checked the person: they may link.
    if body.customer_id:
        profile = customer_repo.get_profile(bid, body.customer_id, consistent=True)
        if profile is None:
            raise NotFound("customer not found", {"customer_id": body.customer_id})
        return Claim(profile)
    if body.email:
        owner = _by_identifier(bid, "email", body.email)
        if owner is not None:
            if not _registrable(owner["program_status"]):
                raise Duplicate(
                    f"a {owner['program_status']} customer already has this email",
                    {"field": "email", "program_status": owner["program_status"]},
                )
            return Claim(owner)
    return Claim(None)


def _provenance(principal: Principal, claim: Claim) -> Callable[[str, str], Provenance]:
    def source(kind: str, value: str) -> Provenance:
        if principal.role is not Role.CUSTOMER:
            return "staff"
        # The invitation went to this address: its token proves it as a verified claim does.
        invited = (
            claim.token_hash is not None and kind == "email" and value == (claim.profile or {}).get(kind)
        )
        return "verified" if invited or principal.owns(kind, value) else "self"

    return source


def _customer_safe(error: Exception) -> Exception:
    """What a customer may learn from a conflict: which field, never whose or in what state."""
    if isinstance(error, Duplicate):
        field = str(error.details.get("field") or "identifier")
        return Duplicate(
            f"this {field} is already registered; sign in with an identity that verifies it, "
            "or use your invitation link",
            {"field": field},
        )
    if isinstance(error, customer_repo.Suppressed):
        return customer_repo.Suppressed(
            "this identifier cannot be registered without proof that it is yours",
            {"field": "identifiers"},
        )
    return error


def register(principal: Principal, body: Registration) -> Registered:
    try:
        registered = retrying(lambda: _register(principal, body))
    except (Duplicate, customer_repo.Suppressed) as error:
        if principal.role is Role.CUSTOMER:
            raise _customer_safe(error) from None
        raise
    if registered.created:
        count(CUSTOMERS_CREATED, 1, "registration")
    return registered


def _register(principal: Principal, body: Registration) -> Registered:
    bid = principal.business_id
    claim = _resolve(principal, body)
    before = claim.profile
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
    after = with_sources(after, before, _provenance(principal, claim))
    after["registered_at"] = at
    if body.terms_version:
        after["terms_version"], after["terms_accepted_at"] = body.terms_version, at
    details: dict[str, Any] = {"fields": sorted(fields)}
    if body.terms_version:
        details["terms_version"] = body.terms_version
    if claim.token_hash:
        details["via"] = "invitation"

    bindable = binding = None
    if body.card_number:
        bindable = load_bindable(bid, body.card_number)
        if bindable.card["customer_id"] != after["customer_id"]:  # not already theirs
            prove_card(principal, bindable.card, body.card_secret)
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
    # Registering is the person's own request to come back: staff (who checked them) or the
    # verified person lift an exclusion's suppression; a self-declared identifier is checked.
    sources = after.get("identifier_sources") or {}
    lifted = frozenset(k for k, s in sources.items() if s in ("staff", "verified"))
    write = customer_repo.Write(
        after=after, before=before, entry=entry, check_suppression=True, lifted=lifted
    )
    stored = customer_repo.stage(tx, write, at)
    if claim.token_hash:
        invitations_repo.stage_token_use(tx, claim.token_hash, "register", at)
    race: set[int] = set()
    if bindable is not None and binding is not None:
        race = stage_merge(tx, principal, bindable, binding, at).indexes
    commit(tx, after["customer_id"], race)
    return Registered(to_customer(stored, principal), created=before is None)


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
    profile = with_sources(profile, None, _provenance(principal, Claim(None)))
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
    count(CUSTOMERS_CREATED, 1, "anonymous")
    return to_customer(stored, principal)
