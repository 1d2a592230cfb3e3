"""Card packing and registration over real HTTP on the local stack (moto server)."""

from __future__ import annotations

import uuid

import pytest
import requests

from local.stack import LocalStack

pytestmark = pytest.mark.local


def test_pack_a_hundred_cards_then_register_with_one(local_stack: LocalStack) -> None:
    # Given an admin of a fresh business
    business = f"reg-{uuid.uuid4().hex[:8]}"
    admin = local_stack.auth("admin", business)
    # When they pack 100 cards (several 100-item transactions on the moto server)
    packed = requests.post(
        local_stack.url("/v1/card-batches"),
        json={"prefix": "50", "start": 1, "count": 100, "luhn": True},
        headers=admin,
        timeout=120,
    )
    # Then every card is created
    assert packed.status_code == 201, packed.text
    assert packed.json()["created"] == 100
    number = packed.json()["cards"][42]["number"]
    # When staff register a customer at the counter with one of them
    staff = local_stack.auth("staff", business)
    registered = requests.post(
        local_stack.url("/v1/registrations"),
        json={"email": f"walk-in.{business}@example.com", "card_number": number},
        headers=staff,
        timeout=30,
    )
    # Then the customer is active with the card, and the card's virtual owner is merged
    assert registered.status_code == 201, registered.text
    customer = registered.json()
    assert customer["cards"] == [{"number": number, "state": "activated"}]
    card = requests.get(local_stack.url(f"/v1/cards/{number}"), headers=staff, timeout=30).json()
    assert card["customer_id"] == customer["customer_id"]
