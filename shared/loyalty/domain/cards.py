"""Cards (docs/design.md#cards): the state machine, numbers, and what binding, replacing and
blocking change. No I/O: functions take stored items and return the items to write, so the
merge rule is unit-tested without AWS and shared by registration, attach and replacement.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from loyalty.domain.errors import Conflict, Forbidden, NotFound, field_error
from loyalty.domain.lifecycle import Actor, LifecycleEvent, ProgramStatus, apply, eligibility
from loyalty.domain.records import CardEntry, CardRecord, ProfileRecord


class CardState(StrEnum):
    ISSUED = "issued"  # packed, owned by a `new` virtual customer, can earn
    ACTIVATED = "activated"  # bound to a real customer
    BLOCKED = "blocked"  # refuses earning; unblock restores the state it had
    DELETED = "deleted"  # terminal: replaced, or its owner excluded


class CardStateError(Conflict):
    code = "illegal_card_state"


def bind(state: CardState) -> CardState:
    """A real customer takes the card (registration, attach, replacement target)."""
    if state is not CardState.ISSUED:
        raise CardStateError(
            f"a card in state {state.value} cannot be bound; only issued cards can",
            {"state": state.value},
        )
    return CardState.ACTIVATED


def block(state: CardState) -> tuple[CardState, CardState]:
    """Return (new state, state to restore on unblock)."""
    if state in (CardState.BLOCKED, CardState.DELETED):
        raise CardStateError(f"a {state.value} card cannot be blocked", {"state": state.value})
    return CardState.BLOCKED, state


def unblock(state: CardState, previous: CardState | None) -> CardState:
    if state is not CardState.BLOCKED:
        raise CardStateError(f"a {state.value} card is not blocked", {"state": state.value})
    return previous or CardState.ACTIVATED


def delete(state: CardState) -> CardState:
    if state is CardState.DELETED:
        raise CardStateError("the card is already deleted", {"state": state.value})
    return CardState.DELETED


def can_earn(state: CardState) -> bool:
    return state in (CardState.ISSUED, CardState.ACTIVATED)


def luhn_check_digit(digits: str) -> str:
    """Check digit that makes `digits + d` pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:  # doubled: these become odd positions once the check digit is appended
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


# --- numbers and binding --------------------------------------------------

MAX_BATCH = 10_000
CARD_NUMBER_PATTERN = r"^[0-9A-Za-z]{4,32}$"  # printed on the card; a key segment too
NUMBER_PATTERN = re.compile(CARD_NUMBER_PATTERN)
# Virtual cards issued at app sign-up: a reserved prefix keeps them apart from packed ranges.
# The secret printed with a packed card (a scratch field): a customer binds the card with it.
SECRET_DIGITS = 8
MAX_SECRET_FAILURES = 5
VIRTUAL_PREFIX = "99"
VIRTUAL_LENGTH = 16


class CardTaken(Conflict):
    code = "card_taken"


def generate_numbers(prefix: str, start: int, count: int, luhn: bool, width: int | None = None) -> list[str]:
    """`prefix` + running number (zero-padded to `width`) [+ Luhn check digit]."""
    if count < 1 or count > MAX_BATCH:
        raise field_error("count", f"must be between 1 and {MAX_BATCH}")
    last = start + count - 1
    width = width or len(str(last))
    if len(str(last)) > width:
        raise field_error("width", f"{width} digits cannot hold {last}")
    numbers = []
    for n in range(start, start + count):
        body = f"{prefix}{n:0{width}d}"
        numbers.append(body + luhn_check_digit(body) if luhn else body)
    if not NUMBER_PATTERN.match(numbers[-1]):
        raise field_error("prefix", "generated numbers must be 4 to 32 letters or digits")
    return numbers


def virtual_card_number() -> str:
    """A random Luhn-valid number in the virtual range (collisions are caught by the write)."""
    body = VIRTUAL_PREFIX + "".join(secrets.choice("0123456789") for _ in range(VIRTUAL_LENGTH - 3))
    return body + luhn_check_digit(body)


def new_secret() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(SECRET_DIGITS))


class CardSecretInvalid(Forbidden):
    code = "card_secret_invalid"


class CardLocked(Forbidden):
    code = "card_locked"


def check_secret(card: CardRecord, matches: bool | None, field: str = "card_secret") -> None:
    """A customer binding `card`: `matches` is whether the secret they gave is the card's
    (None: they gave none). Raises unless it is, and the card is not locked by failures."""
    number = card["number"]
    if int(card.get("secret_failures") or 0) >= MAX_SECRET_FAILURES:
        raise CardLocked("too many wrong secrets for this card; ask at the counter", {"card_number": number})
    if not card.get("secret_hash"):
        raise CardSecretInvalid("this card can only be bound at the counter", {"card_number": number})
    if matches is None:
        raise CardSecretInvalid("give the secret printed with the card", {"field": field})
    if not matches:
        raise CardSecretInvalid("the card's secret does not match", {"field": field})


def split_duplicates(numbers: list[str]) -> tuple[list[str], list[str]]:
    """(first occurrences in order, numbers repeated in the request)."""
    seen: set[str] = set()
    unique, repeated = [], []
    for number in numbers:
        if number in seen:
            repeated.append(number)
        else:
            seen.add(number)
            unique.append(number)
    return unique, repeated


def with_card(card_list: list[CardEntry] | None, number: str, state: str) -> list[CardEntry]:
    """The profile's denormalised card list with `number` set to `state` (appended if new)."""
    out: list[CardEntry] = [{"number": c["number"], "state": c["state"]} for c in card_list or []]
    for entry in out:
        if entry["number"] == number:
            entry["state"] = state
            return out
    out.append({"number": number, "state": state})
    return out


def require_holder(profile: ProfileRecord) -> None:
    status = ProgramStatus(profile["program_status"])
    if not eligibility(status).takes_cards:
        raise Conflict(
            f"a {status.value} customer cannot hold cards",
            {"customer_id": profile["customer_id"], "program_status": status.value},
        )


@dataclass(frozen=True)
class Binding:
    """Items after a real customer takes a packed card from its `new` virtual owner."""

    card: CardRecord
    virtual_owner: ProfileRecord
    target: ProfileRecord


def plan_binding(card: CardRecord, owner: ProfileRecord, target: ProfileRecord, at: str) -> Binding:
    """The merge rule: card activated and owned by `target`, the virtual owner merged into it.

    `target` is the real customer's profile as it will be written (its status already
    decided by the caller); the result adds the card to it. The virtual owner's points move
    with the merge (loyalty.services.points.transfers), in the same transaction.
    """
    number = card["number"]
    if owner["customer_id"] == target["customer_id"]:
        raise Conflict("the customer already holds this card", {"card_number": number})
    state = CardState(card["state"])
    if state is CardState.ISSUED and owner["program_status"] != ProgramStatus.NEW.value:
        raise CardTaken("the card belongs to another customer", {"card_number": number})
    if state is not CardState.ISSUED:
        if state is CardState.ACTIVATED:
            raise CardTaken("the card belongs to another customer", {"card_number": number})
        bind(state)  # raises: blocked and deleted cards cannot be bound
    require_holder(target)
    merged = apply(LifecycleEvent.MERGE, ProgramStatus(owner["program_status"]), Actor.SYSTEM)
    bound = bind(state).value
    card_after: CardRecord = {
        **card,
        "state": bound,
        "customer_id": target["customer_id"],
        "issued_to": owner["customer_id"],  # keeps the link to the merged virtual owner
        "updated_at": at,
    }
    owner_after: ProfileRecord = {
        **owner,
        "program_status": merged.value,
        "merged_into": target["customer_id"],
        "cards": [c for c in owner.get("cards") or [] if c["number"] != number],
    }
    target_after: ProfileRecord = {
        **target,
        "cards": with_card(target.get("cards"), number, bound),
        "merged_from": [*(target.get("merged_from") or []), owner["customer_id"]],
    }
    return Binding(card_after, owner_after, target_after)


def plan_retirement(old_card: CardRecord, customer_id: str, new_number: str, at: str) -> CardRecord:
    """The replaced card: deleted, naming its successor (the chain docs/design.md#cards describes)."""
    if old_card.get("customer_id") != customer_id:
        raise NotFound("card not found", {"card_number": old_card["number"]})
    if old_card["number"] == new_number:
        raise field_error("new_card_number", "must differ from the card being replaced")
    state = delete(CardState(old_card["state"]))
    return {**old_card, "state": state.value, "replaced_by": new_number, "updated_at": at}


def plan_block(card: CardRecord, blocked: bool, at: str, by_customer: bool = False) -> CardRecord:
    """Block (remembering the state to restore and who blocked) or unblock (restoring it).

    A customer may block their own card (lost) and lift their own block, never a staff block.
    """
    state = CardState(card["state"])
    after: CardRecord = {**card, "updated_at": at}
    if blocked:
        new_state, previous = block(state)
        after["state"], after["previous_state"] = new_state.value, previous.value
        after["blocked_by"] = "customer" if by_customer else "staff"
    else:
        if by_customer and state is CardState.BLOCKED and card.get("blocked_by") != "customer":
            raise Forbidden(
                "staff blocked this card; only staff can unblock it", {"card_number": card["number"]}
            )
        after.pop("blocked_by", None)
        previous_raw = card.get("previous_state")
        restored = unblock(state, CardState(previous_raw) if previous_raw else None)
        after["state"] = restored.value
        after.pop("previous_state", None)
    return after
