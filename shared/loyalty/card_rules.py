"""Card rules with no I/O: number generation, and what binding, replacing and blocking change.

The functions take stored items as plain dicts and return the items to write, so the
merge rule (DESIGN.md "Cards") is unit-tested without AWS and shared by registration,
attach and replacement.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from loyalty import cards
from loyalty.cards import CardState
from loyalty.errors import Conflict, NotFound, field_error
from loyalty.lifecycle import Actor, Event, ProgramStatus, apply

MAX_BATCH = 10_000
NUMBER_PATTERN = re.compile(r"^[0-9A-Za-z]{4,32}$")
# Virtual cards issued at app sign-up: a reserved prefix keeps them apart from packed ranges.
VIRTUAL_PREFIX = "99"
VIRTUAL_LENGTH = 16
# Customers that can take a card: real people, not temporary or terminal profiles.
_CANNOT_HOLD = frozenset({ProgramStatus.NEW, ProgramStatus.MERGED, ProgramStatus.EXCLUDED})


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
        numbers.append(body + cards.luhn_check_digit(body) if luhn else body)
    if not NUMBER_PATTERN.match(numbers[-1]):
        raise field_error("prefix", "generated numbers must be 4 to 32 letters or digits")
    return numbers


def virtual_card_number() -> str:
    """A random Luhn-valid number in the virtual range (collisions are caught by the write)."""
    body = VIRTUAL_PREFIX + "".join(secrets.choice("0123456789") for _ in range(VIRTUAL_LENGTH - 3))
    return body + cards.luhn_check_digit(body)


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


def with_card(card_list: list[dict[str, Any]] | None, number: str, state: str) -> list[dict[str, Any]]:
    """The profile's denormalised card list with `number` set to `state` (appended if new)."""
    out = [dict(c) for c in card_list or []]
    for entry in out:
        if entry["number"] == number:
            entry["state"] = state
            return out
    out.append({"number": number, "state": state})
    return out


def require_holder(profile: dict[str, Any]) -> None:
    status = ProgramStatus(profile["program_status"])
    if status in _CANNOT_HOLD:
        raise Conflict(
            f"a {status.value} customer cannot hold cards",
            {"customer_id": profile["customer_id"], "program_status": status.value},
        )


@dataclass(frozen=True)
class Binding:
    """Items after a real customer takes a packed card from its `new` virtual owner."""

    card: dict[str, Any]
    virtual_owner: dict[str, Any]
    target: dict[str, Any]
    balance_moved: int


def plan_binding(card: dict[str, Any], owner: dict[str, Any], target: dict[str, Any], at: str) -> Binding:
    """The merge rule: card activated and owned by `target`, the virtual owner merged into it.

    `target` is the real customer's profile as it will be written (its status already
    decided by the caller); the result adds the card and the moved balance to it.
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
        cards.bind(state)  # raises: blocked and deleted cards cannot be bound
    require_holder(target)
    merged = apply(Event.MERGE, ProgramStatus(owner["program_status"]), Actor.SYSTEM)
    moved = int(owner.get("balance") or 0)
    card_after = {
        **card,
        "state": cards.bind(state).value,
        "customer_id": target["customer_id"],
        "issued_to": owner["customer_id"],  # keeps the link to the merged virtual owner
        "updated_at": at,
    }
    owner_after = {
        **owner,
        "program_status": merged.value,
        "merged_into": target["customer_id"],
        "balance": 0,
        "cards": [c for c in owner.get("cards") or [] if c["number"] != number],
    }
    target_after = {
        **target,
        "balance": int(target.get("balance") or 0) + moved,
        "cards": with_card(target.get("cards"), number, card_after["state"]),
        "merged_from": [*(target.get("merged_from") or []), owner["customer_id"]],
    }
    return Binding(card_after, owner_after, target_after, moved)


def plan_retirement(old_card: dict[str, Any], customer_id: str, new_number: str, at: str) -> dict[str, Any]:
    """The replaced card: deleted, naming its successor (the chain DESIGN.md asks for)."""
    if old_card.get("customer_id") != customer_id:
        raise NotFound("card not found", {"card_number": old_card["number"]})
    if old_card["number"] == new_number:
        raise field_error("new_card_number", "must differ from the card being replaced")
    state = cards.delete(CardState(old_card["state"]))
    return {**old_card, "state": state.value, "replaced_by": new_number, "updated_at": at}


def plan_block(card: dict[str, Any], blocked: bool, at: str) -> dict[str, Any]:
    """Block (remembering the state to restore) or unblock (restoring it)."""
    state = CardState(card["state"])
    after = dict(card, updated_at=at)
    if blocked:
        new_state, previous = cards.block(state)
        after.update(state=new_state.value, previous_state=previous.value)
    else:
        previous_raw = card.get("previous_state")
        restored = cards.unblock(state, CardState(previous_raw) if previous_raw else None)
        after.update(state=restored.value)
        after.pop("previous_state", None)
    return after
