"""Card items: one per number (`keys.card_key`), unique within a business by its key.

A card is changed only together with its owner's profile (whose `cards` list mirrors
it), so single-card writes are staged into the caller's Transaction. Packing writes
many cards with their virtual owners in transactions of up to 100 items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from loyalty.adapters import aws
from loyalty.config import settings
from loyalty.domain.keyed import keyed_digest, same_digest
from loyalty.domain.records import CardRecord
from loyalty.repository import customers as customer_repo
from loyalty.repository import keys
from loyalty.repository.base import (
    MAX_TRANSACTION_ITEMS,
    Transaction,
    TransactionCancelled,
    batch_get,
    get_item,
    serialize,
    table_name,
)

_INTERNAL = frozenset({"PK", "SK", "entity"})


def card_item(card: CardRecord) -> dict[str, Any]:
    item = {k: v for k, v in card.items() if k not in _INTERNAL}
    item.update(keys.card_key(card["business_id"], card["number"]), entity=keys.ENTITY_CARD)
    return item


def strip(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


def get_card(business_id: str, number: str, consistent: bool = True) -> CardRecord | None:
    item = get_item(keys.card_key(business_id, number), consistent=consistent)
    return cast(CardRecord, strip(item)) if item else None


def stage(tx: Transaction, after: CardRecord, before: CardRecord | None) -> int:
    """Put the card under its version (create: must not exist). Returns the op's index."""
    card = after.copy()
    card["version"] = (before["version"] + 1) if before else 1
    if before is None:
        return tx.put(card_item(card), "attribute_not_exists(PK)")
    return tx.put(card_item(card), "#v = :v", names={"#v": "version"}, values={":v": before["version"]})


def secret_digest(business_id: str, number: str, secret: str) -> str:
    """The stored form of a card's printed secret: a keyed digest, never the secret."""
    return keyed_digest(settings().suppression_key, "card-secret", business_id, number, secret)


def secret_matches(card: CardRecord, secret: str) -> bool:
    stored = card.get("secret_hash")
    return bool(stored) and same_digest(
        secret_digest(card["business_id"], card["number"], secret), str(stored)
    )


def record_secret_failure(card: CardRecord) -> None:
    """Count a wrong secret on the card (no version bump: it changes nothing a binding reads
    but the lock; the lock is checked before the secret)."""
    aws.dynamodb().update_item(
        TableName=table_name(),
        Key=serialize(keys.card_key(card["business_id"], card["number"])),
        UpdateExpression="ADD secret_failures :one",
        ConditionExpression="attribute_exists(PK)",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def existing_numbers(business_id: str, numbers: Sequence[str]) -> set[str]:
    """Which of `numbers` already exist (BatchGetItem, 100 keys a request, keys only)."""
    found = batch_get([keys.card_key(business_id, n) for n in numbers], consistent=True)
    return {i["number"] for i in found}


@dataclass
class PackEntry:
    """One packed card and the `new` virtual owner that holds it until a real customer takes it."""

    card: CardRecord
    owner: customer_repo.Write


@dataclass
class PackOutcome:
    created: list[CardRecord] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# Owner profile + its audit event + the card.
ITEMS_PER_CARD = 3
CARDS_PER_TRANSACTION = MAX_TRANSACTION_ITEMS // ITEMS_PER_CARD


def pack(entries: Sequence[PackEntry], at: str, attempts: int = 3) -> PackOutcome:
    """Write each card with its owner atomically, many cards per TransactWriteItems.

    A transaction is all or nothing, so no card is ever stored without its owner and
    audit event. When one is cancelled, the cards whose `attribute_not_exists` failed are
    duplicates created since the BatchGetItem check; the rest are written again.
    """
    outcome = PackOutcome()
    for start in range(0, len(entries), CARDS_PER_TRANSACTION):
        pending = list(entries[start : start + CARDS_PER_TRANSACTION])
        for attempt in range(attempts):
            tx = Transaction()
            card_ops: dict[int, PackEntry] = {}
            for entry in pending:
                customer_repo.stage(tx, entry.owner, at)
                card_ops[stage(tx, entry.card, None)] = entry
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                taken = {card_ops[i].card["number"] for i in cancelled.failed_indexes() if i in card_ops}
                outcome.duplicates.extend(n for n in (e.card["number"] for e in pending) if n in taken)
                pending = [e for e in pending if e.card["number"] not in taken]
                if not pending:
                    break
                if attempt + 1 == attempts:
                    outcome.failed.extend(e.card["number"] for e in pending)
                continue
            outcome.created.extend({**e.card, "version": 1} for e in pending)
            break
    return outcome
