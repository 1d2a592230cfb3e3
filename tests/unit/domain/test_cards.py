"""Cards (loyalty.domain.cards): the state machine, numbers and the merge rule, without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.domain import cards
from loyalty.domain.cards import CardState, CardStateError, CardTaken
from loyalty.domain.errors import Conflict, NotFound, ValidationFailed
from tests.support import luhn_valid


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
    assert luhn_valid(number)
    assert cards.luhn_check_digit(number[:-1]) == number[-1]


def test_luhn_rejects_a_changed_digit() -> None:
    assert not luhn_valid("79927398710")
    assert not luhn_valid("abc")


AT = "2026-01-01T00:00:00.000000Z"


def card(state: str = "issued", owner: str = "v1", number: str = "1234567") -> dict[str, Any]:
    return {"business_id": "b", "number": number, "state": state, "customer_id": owner, "version": 3}


def profile(cid: str, status: str, cards: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"business_id": "b", "customer_id": cid, "program_status": status, "cards": cards or []}


# --- numbers -------------------------------------------------------------------------


def test_generated_numbers_are_padded_sequential_and_luhn_valid() -> None:
    # When 12 numbers are generated from 95 with a Luhn digit
    numbers = cards.generate_numbers("27", 95, 12, luhn=True)
    # Then they run 095..106 (padded to the widest), each with a correct check digit
    assert [n[2:-1] for n in numbers] == [f"{i:03d}" for i in range(95, 107)]
    assert all(luhn_valid(n) for n in numbers)
    # And without Luhn the body is the number
    assert cards.generate_numbers("27", 1, 2, luhn=False, width=6) == ["27000001", "27000002"]


def test_a_known_luhn_number_is_reproduced() -> None:
    # Given the classic test number 79927398713 / Then its check digit is generated
    assert cards.generate_numbers("", 7992739871, 1, luhn=True) == ["79927398713"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prefix": "1", "start": 0, "count": 0, "luhn": False}, "count"),
        ({"prefix": "1", "start": 0, "count": 10_001, "luhn": False}, "count"),
        ({"prefix": "1", "start": 99, "count": 2, "luhn": False, "width": 2}, "width"),
        ({"prefix": "", "start": 1, "count": 1, "luhn": False}, "prefix"),  # "1" is too short
    ],
)
def test_bad_ranges_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        cards.generate_numbers(**kwargs)
    assert err.value.details["fields"][0]["field"] == field


def test_virtual_numbers_are_random_luhn_valid_and_in_the_virtual_range() -> None:
    numbers = {cards.virtual_card_number() for _ in range(50)}
    assert len(numbers) == 50
    assert all(len(n) == 16 and n.startswith("99") and luhn_valid(n) for n in numbers)


def test_split_duplicates_keeps_first_occurrences_in_order() -> None:
    assert cards.split_duplicates(["a", "b", "a", "c", "b"]) == (["a", "b", "c"], ["a", "b"])


# --- the merge rule ------------------------------------------------------------------


def test_binding_moves_the_card_and_merges_the_virtual_owner() -> None:
    # Given a packed card held by its virtual owner, and a customer with one card
    owner = profile("v1", "new", [{"number": "1234567", "state": "issued"}])
    target = profile("c1", "active", [{"number": "999", "state": "blocked"}])
    # When the customer takes the card
    binding = cards.plan_binding(card(), owner, target, AT)
    # Then the card is activated and owned by the customer, keeping its link to the virtual owner
    assert binding.card["state"] == "activated" and binding.card["customer_id"] == "c1"
    assert binding.card["issued_to"] == "v1"
    # And the virtual owner is merged into the customer, with nothing left on it
    assert binding.virtual_owner["program_status"] == "merged"
    assert binding.virtual_owner["merged_into"] == "c1"
    assert binding.virtual_owner["cards"] == []
    # And the customer lists both cards (the points move in the same transaction: services)
    assert binding.target["cards"] == [
        {"number": "999", "state": "blocked"},
        {"number": "1234567", "state": "activated"},
    ]
    # And the inputs were not modified
    assert owner["program_status"] == "new" and len(target["cards"]) == 1


@pytest.mark.parametrize(
    ("state", "owner_status", "error"),
    [
        ("blocked", "new", CardStateError),
        ("deleted", "new", CardStateError),
        ("activated", "active", CardTaken),
        ("issued", "active", CardTaken),  # an issued card owned by a real customer is not free
        ("issued", "merged", CardTaken),
    ],
)
def test_cards_that_cannot_be_bound(state: str, owner_status: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        cards.plan_binding(card(state), profile("v1", owner_status), profile("c1", "active"), AT)


@pytest.mark.parametrize("status", ["new", "merged", "excluded"])
def test_temporary_or_terminal_customers_cannot_take_cards(status: str) -> None:
    with pytest.raises(Conflict):
        cards.plan_binding(card(), profile("v1", "new"), profile("c1", status), AT)


def test_a_customer_cannot_take_their_own_card_again() -> None:
    with pytest.raises(Conflict, match="already holds"):
        cards.plan_binding(card("activated", "c1"), profile("c1", "active"), profile("c1", "active"), AT)


def test_retirement_deletes_and_names_the_successor() -> None:
    old = card("activated", "c1")
    retired = cards.plan_retirement(old, "c1", "7654321", AT)
    assert (retired["state"], retired["replaced_by"]) == ("deleted", "7654321")
    # Another customer's card is not found; the same number and a deleted card are refused
    with pytest.raises(NotFound):
        cards.plan_retirement(old, "c2", "7654321", AT)
    with pytest.raises(ValidationFailed):
        cards.plan_retirement(old, "c1", "1234567", AT)
    with pytest.raises(CardStateError):
        cards.plan_retirement(card("deleted", "c1"), "c1", "7654321", AT)


@pytest.mark.parametrize("state", ["issued", "activated"])
def test_block_remembers_and_unblock_restores(state: str) -> None:
    blocked = cards.plan_block(card(state), True, AT)
    assert (blocked["state"], blocked["previous_state"]) == ("blocked", state)
    restored = cards.plan_block(blocked, False, AT)
    assert restored["state"] == state and "previous_state" not in restored
    with pytest.raises(CardStateError):
        cards.plan_block(blocked, True, AT)
    with pytest.raises(CardStateError):
        cards.plan_block(restored, False, AT)


def test_with_card_replaces_in_place_or_appends() -> None:
    held = [{"number": "1", "state": "issued"}]
    assert cards.with_card(held, "1", "blocked") == [{"number": "1", "state": "blocked"}]
    assert cards.with_card(held, "2", "activated")[-1] == {"number": "2", "state": "activated"}
    assert held == [{"number": "1", "state": "issued"}]
