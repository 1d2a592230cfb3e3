"""Card numbers and the merge rule (loyalty.card_rules), without AWS."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loyalty import card_rules
from loyalty.card_rules import CardTaken
from loyalty.cards import CardStateError, luhn_valid
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.registration_models import CardBatch, Registration

AT = "2026-01-01T00:00:00.000000Z"


def card(state: str = "issued", owner: str = "v1", number: str = "1234567") -> dict[str, Any]:
    return {"business_id": "b", "number": number, "state": state, "customer_id": owner, "version": 3}


def profile(
    cid: str, status: str, balance: int = 0, cards: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "business_id": "b",
        "customer_id": cid,
        "program_status": status,
        "balance": balance,
        "cards": cards or [],
    }


# --- numbers -------------------------------------------------------------------------


def test_generated_numbers_are_padded_sequential_and_luhn_valid() -> None:
    # When 12 numbers are generated from 95 with a Luhn digit
    numbers = card_rules.generate_numbers("27", 95, 12, luhn=True)
    # Then they run 095..106 (padded to the widest), each with a correct check digit
    assert [n[2:-1] for n in numbers] == [f"{i:03d}" for i in range(95, 107)]
    assert all(luhn_valid(n) for n in numbers)
    # And without Luhn the body is the number
    assert card_rules.generate_numbers("27", 1, 2, luhn=False, width=6) == ["27000001", "27000002"]


def test_a_known_luhn_number_is_reproduced() -> None:
    # Given the classic test number 79927398713 / Then its check digit is generated
    assert card_rules.generate_numbers("", 7992739871, 1, luhn=True) == ["79927398713"]


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
        card_rules.generate_numbers(**kwargs)
    assert err.value.details["fields"][0]["field"] == field


def test_virtual_numbers_are_random_luhn_valid_and_in_the_virtual_range() -> None:
    numbers = {card_rules.virtual_card_number() for _ in range(50)}
    assert len(numbers) == 50
    assert all(len(n) == 16 and n.startswith("99") and luhn_valid(n) for n in numbers)


def test_split_duplicates_keeps_first_occurrences_in_order() -> None:
    assert card_rules.split_duplicates(["a", "b", "a", "c", "b"]) == (["a", "b", "c"], ["a", "b"])


def test_card_batch_takes_one_form_only() -> None:
    assert CardBatch.model_validate({"numbers": ["1234"]}).numbers == ["1234"]
    assert CardBatch.model_validate({"start": 1, "count": 2}).prefix is None
    for bad in ({"numbers": ["1234"], "count": 1}, {"prefix": "1"}, {}, {"start": 1, "count": 1, "x": 1}):
        with pytest.raises(ValidationError):
            CardBatch.model_validate(bad)


def test_registration_needs_a_contact() -> None:
    with pytest.raises(ValidationError):
        Registration.model_validate({"first_name": "Ann"})
    assert Registration.model_validate({"phone": "+15550100"}).phone == "+15550100"


# --- the merge rule ------------------------------------------------------------------


def test_binding_moves_card_balance_and_merges_the_virtual_owner() -> None:
    # Given a packed card whose virtual owner has 40 points, and a customer with 5 and one card
    owner = profile("v1", "new", 40, [{"number": "1234567", "state": "issued"}])
    target = profile("c1", "active", 5, [{"number": "999", "state": "blocked"}])
    # When the customer takes the card
    binding = card_rules.plan_binding(card(), owner, target, AT)
    # Then the card is activated and owned by the customer, keeping its link to the virtual owner
    assert binding.card["state"] == "activated" and binding.card["customer_id"] == "c1"
    assert binding.card["issued_to"] == "v1"
    # And the virtual owner is merged into the customer, with nothing left on it
    assert binding.virtual_owner["program_status"] == "merged"
    assert binding.virtual_owner["merged_into"] == "c1"
    assert (binding.virtual_owner["balance"], binding.virtual_owner["cards"]) == (0, [])
    # And the customer has the balance and lists both cards
    assert binding.target["balance"] == 45 and binding.balance_moved == 40
    assert binding.target["cards"] == [
        {"number": "999", "state": "blocked"},
        {"number": "1234567", "state": "activated"},
    ]
    # And the inputs were not modified
    assert owner["program_status"] == "new" and target["balance"] == 5


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
        card_rules.plan_binding(card(state), profile("v1", owner_status), profile("c1", "active"), AT)


@pytest.mark.parametrize("status", ["new", "merged", "excluded"])
def test_temporary_or_terminal_customers_cannot_take_cards(status: str) -> None:
    with pytest.raises(Conflict):
        card_rules.plan_binding(card(), profile("v1", "new"), profile("c1", status), AT)


def test_a_customer_cannot_take_their_own_card_again() -> None:
    with pytest.raises(Conflict, match="already holds"):
        card_rules.plan_binding(card("activated", "c1"), profile("c1", "active"), profile("c1", "active"), AT)


def test_retirement_deletes_and_names_the_successor() -> None:
    old = card("activated", "c1")
    retired = card_rules.plan_retirement(old, "c1", "7654321", AT)
    assert (retired["state"], retired["replaced_by"]) == ("deleted", "7654321")
    # Another customer's card is not found; the same number and a deleted card are refused
    with pytest.raises(NotFound):
        card_rules.plan_retirement(old, "c2", "7654321", AT)
    with pytest.raises(ValidationFailed):
        card_rules.plan_retirement(old, "c1", "1234567", AT)
    with pytest.raises(CardStateError):
        card_rules.plan_retirement(card("deleted", "c1"), "c1", "7654321", AT)


@pytest.mark.parametrize("state", ["issued", "activated"])
def test_block_remembers_and_unblock_restores(state: str) -> None:
    blocked = card_rules.plan_block(card(state), True, AT)
    assert (blocked["state"], blocked["previous_state"]) == ("blocked", state)
    restored = card_rules.plan_block(blocked, False, AT)
    assert restored["state"] == state and "previous_state" not in restored
    with pytest.raises(CardStateError):
        card_rules.plan_block(blocked, True, AT)
    with pytest.raises(CardStateError):
        card_rules.plan_block(restored, False, AT)


def test_with_card_replaces_in_place_or_appends() -> None:
    cards = [{"number": "1", "state": "issued"}]
    assert card_rules.with_card(cards, "1", "blocked") == [{"number": "1", "state": "blocked"}]
    assert card_rules.with_card(cards, "2", "activated")[-1] == {"number": "2", "state": "activated"}
    assert cards == [{"number": "1", "state": "issued"}]
