"""Card and registration requests (loyalty.schemas): shapes refused before any use case runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loyalty.schemas.cards import CardBatch
from loyalty.schemas.registration import Registration


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
