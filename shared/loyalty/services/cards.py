"""Card use cases (docs/design.md#cards): pack, read, block/unblock, attach, replace; and the
merge transaction.

Every change to a card is one TransactWriteItems with its owner's profile (the profile
lists its cards) and an audit event. Binding a packed card to a real customer merges the
card's `new` virtual owner into that customer in the same transaction (docs/design.md#cards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from loyalty.domain import cards
from loyalty.domain.cards import Binding, CardTaken
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import Conflict, Duplicate, NotFound, VersionConflict
from loyalty.domain.lifecycle import AuditKind, LifecycleEvent, apply
from loyalty.domain.principal import BACK_OFFICE, Principal, Role
from loyalty.domain.records import CardRecord, ProfileRecord
from loyalty.repository import cards as card_repo
from loyalty.repository import customers as customer_repo
from loyalty.repository.base import Transaction, TransactionCancelled
from loyalty.schemas.cards import (
    Card,
    CardAttach,
    CardBatch,
    CardBatchReport,
    CardFailure,
    CardPatch,
    CardReplacement,
    PackedCard,
)
from loyalty.schemas.customers import Customer
from loyalty.services.customers import new_profile, to_customer
from loyalty.services.points import transfers

ATTEMPTS = 3
# How many per-number failures a report or error carries (the rest are counted).
MAX_REPORTED = 1000
T = TypeVar("T")


def to_card(card: CardRecord) -> Card:
    return Card.model_validate({k: v for k, v in card.items() if k in Card.model_fields})


def retrying(attempt: Callable[[], T]) -> T:
    """Run a read-decide-write attempt again when the profile changed underneath it.

    A lost race for a card is not retried: it raises CardTaken (409) at once.
    """
    for n in range(ATTEMPTS):
        try:
            return attempt()
        except VersionConflict:
            if n + 1 == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- the merge transaction -----------------------------------------------------------


@dataclass(frozen=True)
class Bindable:
    card: CardRecord
    owner: ProfileRecord


def load_bindable(business_id: str, number: str, field: str = "card_number") -> Bindable:
    card = card_repo.get_card(business_id, number)
    if card is None:
        raise NotFound("card not found", {field: number})
    owner = customer_repo.get_profile(business_id, card["customer_id"], consistent=True)
    if owner is None:  # pragma: no cover - cards are only written with their owner
        raise Conflict("the card's owner is missing", {field: number})
    return Bindable(card, owner)


@dataclass
class MergeOps:
    """Indexes of the ops that fail when another request took the card first."""

    indexes: set[int]


def stage_merge(
    tx: Transaction, principal: Principal, bindable: Bindable, binding: Binding, at: str
) -> MergeOps:
    owner = bindable.owner
    # The temporary owner's points (lots with their expiry, pending dates, debt) move too.
    moved = transfers.stage_merge(
        tx,
        principal.business_id,
        owner["customer_id"],
        binding.target["customer_id"],
        at,
        principal.as_system(),
    )
    profile_index = len(tx.items)
    customer_repo.stage(
        tx,
        customer_repo.Write(
            after=binding.virtual_owner,
            before=owner,
            entry=customer_repo.AuditEntry(
                AuditKind.MERGE,
                principal.as_system(),
                owner["program_status"],
                binding.virtual_owner["program_status"],
                details={
                    "merged_into": binding.target["customer_id"],
                    "card_number": binding.card["number"],
                    "points_moved": moved,
                },
            ),
        ),
        at,
    )
    card_index = card_repo.stage(tx, binding.card, bindable.card)
    return MergeOps({profile_index, card_index})


def commit(tx: Transaction, target_id: str, race: set[int]) -> None:
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if race & set(cancelled.failed_indexes()):
            raise CardTaken(
                "the card was taken or changed by a concurrent request; nothing was changed",
                {"customer_id": target_id},
            ) from cancelled
        raise customer_repo.explain_cancellation(tx, cancelled, target_id) from cancelled


def prove_card(
    principal: Principal, card: CardRecord, secret: str | None, field: str = "card_secret"
) -> None:
    """A customer binds a card only with the secret printed with it (staff need none); a wrong
    secret counts against the card, which locks after a few (numbers are sequential)."""
    if principal.role is not Role.CUSTOMER:
        return
    given = None if secret is None else card_repo.secret_matches(card, secret)
    if given is False:
        card_repo.record_secret_failure(card)
    cards.check_secret(card, given, field)


def binding_details(binding: Binding) -> dict[str, Any]:
    return {
        "card_number": binding.card["number"],
        "merged_customer_id": binding.virtual_owner["customer_id"],
    }


# --- packing -------------------------------------------------------------------------


def pack_cards(principal: Principal, body: CardBatch) -> CardBatchReport:
    status = apply(LifecycleEvent.PACK_CARD, None, principal.actor)
    bid = principal.business_id
    if body.numbers is not None:
        numbers = body.numbers
    else:
        assert body.start is not None and body.count is not None  # the model guarantees both
        numbers = cards.generate_numbers(body.prefix or "", body.start, body.count, body.luhn, body.width)
    unique, repeated = cards.split_duplicates(numbers)
    existing = card_repo.existing_numbers(bid, unique)
    at = now_iso()
    actor = principal.as_actor_record()
    entries = []
    printed: dict[str, str] = {}  # number -> the secret printed with it (only ever shown here)
    for number in unique:
        if number in existing:
            continue
        owner = new_profile(bid, {"cards": [{"number": number, "state": "issued"}]}, status)
        printed[number] = cards.new_secret()
        card: CardRecord = {
            "business_id": bid,
            "number": number,
            "state": "issued",
            "customer_id": owner["customer_id"],
            "secret_hash": card_repo.secret_digest(bid, number, printed[number]),
            "created_at": at,
            "updated_at": at,
        }
        entry = customer_repo.AuditEntry(
            AuditKind.PACK_CARD, actor, None, status.value, details={"card_number": number}
        )
        entries.append(card_repo.PackEntry(card, customer_repo.Write(after=owner, entry=entry)))
    outcome = card_repo.pack(entries, at)

    failures = [CardFailure(number=n, code="duplicate", message="repeated in this request") for n in repeated]
    failures += [
        CardFailure(number=n, code="duplicate", message="a card with this number exists")
        for n in [*(n for n in unique if n in existing), *outcome.duplicates]
    ]
    failures += [
        CardFailure(number=n, code="not_written", message="not written; retry") for n in outcome.failed
    ]
    if not outcome.created:
        raise Duplicate(
            "no card was created",
            {"errors": [f.model_dump() for f in failures[:MAX_REPORTED]], "failed": len(failures)},
        )
    return CardBatchReport(
        requested=len(numbers),
        created=len(outcome.created),
        failed=len(failures),
        cards=[
            PackedCard(
                number=c["number"],
                state=c["state"],
                customer_id=c["customer_id"],
                secret=printed[c["number"]],
            )
            for c in outcome.created
        ],
        errors=failures[:MAX_REPORTED],
    )


# --- read, block, unblock ------------------------------------------------------------


def visible_card(principal: Principal, number: str) -> CardRecord:
    card = card_repo.get_card(principal.business_id, number)
    # A customer sees only their own cards; others' are "not found", not "forbidden".
    if card is None or (principal.role is Role.CUSTOMER and card["customer_id"] != principal.sub):
        raise NotFound("card not found", {"card_number": number})
    if principal.role is not Role.CUSTOMER:
        principal.require(BACK_OFFICE)
    return card


def get_card(principal: Principal, number: str) -> Card:
    return to_card(visible_card(principal, number))


def patch_card(principal: Principal, number: str, body: CardPatch) -> Card:
    def attempt() -> Card:
        card = visible_card(principal, number)
        owner = customer_repo.require_profile(principal.business_id, card["customer_id"])
        at = now_iso()
        after = cards.plan_block(card, body.blocked, at, by_customer=principal.role is Role.CUSTOMER)
        owner_after: ProfileRecord = {
            **owner,
            "cards": cards.with_card(owner.get("cards"), number, after["state"]),
        }
        entry = customer_repo.AuditEntry(
            AuditKind.CARD_BLOCKED if body.blocked else AuditKind.CARD_UNBLOCKED,
            principal.as_actor_record(),
            owner["program_status"],
            owner["program_status"],
            details={"card_number": number, "state": after["state"]},
        )
        tx = Transaction()
        customer_repo.stage(tx, customer_repo.Write(after=owner_after, before=owner, entry=entry), at)
        card_index = card_repo.stage(tx, after, card)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if card_index in cancelled.failed_indexes():
                raise VersionConflict(
                    "the card changed while it was updated", {"card_number": number}
                ) from None
            raise customer_repo.explain_cancellation(tx, cancelled, owner["customer_id"]) from cancelled
        return to_card({**after, "version": card["version"] + 1})

    return retrying(attempt)


# --- attach and replace --------------------------------------------------------------


def holder(principal: Principal, customer_id: str) -> ProfileRecord:
    principal.require_self_or(customer_id, BACK_OFFICE)
    target = customer_repo.require_profile(principal.business_id, customer_id)
    cards.require_holder(target)
    return target


def attach_card(principal: Principal, customer_id: str, body: CardAttach) -> Customer:
    def attempt() -> Customer:
        target = holder(principal, customer_id)
        bindable = load_bindable(principal.business_id, body.card_number)
        prove_card(principal, bindable.card, body.card_secret)
        at = now_iso()
        binding = cards.plan_binding(bindable.card, bindable.owner, target, at)
        tx = Transaction()
        entry = customer_repo.AuditEntry(
            AuditKind.CARD_ATTACHED,
            principal.as_actor_record(),
            target["program_status"],
            target["program_status"],
            details=binding_details(binding),
        )
        stored = customer_repo.stage(
            tx, customer_repo.Write(after=binding.target, before=target, entry=entry), at
        )
        race = stage_merge(tx, principal, bindable, binding, at)
        commit(tx, customer_id, race.indexes)
        return to_customer(stored, principal)

    return retrying(attempt)


def replace_card(principal: Principal, customer_id: str, number: str, body: CardReplacement) -> Customer:
    def attempt() -> Customer:
        target = holder(principal, customer_id)
        old = card_repo.get_card(principal.business_id, number)
        if old is None:
            raise NotFound("card not found", {"card_number": number})
        at = now_iso()
        retired = cards.plan_retirement(old, customer_id, body.new_card_number, at)
        bindable = load_bindable(principal.business_id, body.new_card_number, "new_card_number")
        prove_card(principal, bindable.card, body.new_card_secret, "new_card_secret")
        without_old: ProfileRecord = {
            **target,
            "cards": cards.with_card(target.get("cards"), number, retired["state"]),
        }
        binding = cards.plan_binding({**bindable.card, "replaces": number}, bindable.owner, without_old, at)
        tx = Transaction()
        entry = customer_repo.AuditEntry(
            AuditKind.CARD_REPLACED,
            principal.as_actor_record(),
            target["program_status"],
            target["program_status"],
            details={**binding_details(binding), "replaced_card_number": number},
        )
        stored = customer_repo.stage(
            tx, customer_repo.Write(after=binding.target, before=target, entry=entry), at
        )
        old_index = card_repo.stage(tx, retired, old)
        race = stage_merge(tx, principal, bindable, binding, at)
        commit(tx, customer_id, race.indexes | {old_index})
        return to_customer(stored, principal)

    return retrying(attempt)
