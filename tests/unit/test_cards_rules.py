"""Card state machine and Luhn (DESIGN.md "Cards")."""

from __future__ import annotations

import pytest

from loyalty import cards
from loyalty.cards import CardState, CardStateError


def test_only_issued_cards_bind() -> None:
    # Given an issued card / When bound / Then it is activated
    assert cards.bind(CardState.ISSUED) is CardState.ACTIVATED
    # And every other state refuses binding
    for state in (CardState.ACTIVATED, CardState.BLOCKED, CardState.DELETED):
        with pytest.raises(CardStateError):
            cards.bind(state)


@pytest.mark.parametrize("state", [CardState.ISSUED, CardState.ACTIVATED])
def test_block_then_unblock_restores_the_previous_state(state: CardState) -> None:
    # Given a card in `state` / When blocked then unblocked
    blocked, previous = cards.block(state)
    # Then it comes back to the state it had
    assert blocked is CardState.BLOCKED
    assert cards.unblock(blocked, previous) is state
    assert not cards.can_earn(blocked)


def test_blocked_or_deleted_cards_cannot_be_blocked_and_deleted_is_terminal() -> None:
    for state in (CardState.BLOCKED, CardState.DELETED):
        with pytest.raises(CardStateError):
            cards.block(state)
    with pytest.raises(CardStateError):
        cards.delete(CardState.DELETED)
    with pytest.raises(CardStateError):
        cards.unblock(CardState.ACTIVATED, None)
    assert cards.delete(CardState.BLOCKED) is CardState.DELETED


@pytest.mark.parametrize("number", ["79927398713", "4539578763621486", "0000000000000000"])
def test_luhn_known_valid_numbers(number: str) -> None:
    # Given published Luhn-valid numbers / Then they validate and their check digit is recomputed
    assert cards.luhn_valid(number)
    assert cards.luhn_check_digit(number[:-1]) == number[-1]


def test_luhn_rejects_a_changed_digit() -> None:
    assert not cards.luhn_valid("79927398710")
    assert not cards.luhn_valid("abc")
