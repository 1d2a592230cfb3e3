"""Card state machine (DESIGN.md "Cards"): issued, activated, blocked (restorable), deleted."""

from __future__ import annotations

from enum import StrEnum

from loyalty.errors import Conflict


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


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]
