"""What exclusion erases (loyalty.domain.erasure): no AWS."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.domain.erasure import ERASED_REASON, erased_fields, erased_profile, scrub_text


def test_erasure_keeps_only_the_whitelist_and_deletes_cards() -> None:
    # Given a profile with personal data, a field nobody listed yet, cards and statuses
    profile: dict[str, Any] = {
        "business_id": "b",
        "customer_id": "c",
        "program_status": "active",
        "version": 4,
        "created_at": "t0",
        "updated_at": "t1",
        "email": "a@example.com",
        "phone": "+1555",
        "first_name": "Ann",
        "last_name": "Lee",
        "external_id": "X1",
        "device_id": "dev-9",
        "attributes": {"shoe_size": 9},
        "birthday": "1990-01-01",
        "marketing_consent": True,
        "statuses": {"VIP": {}},
        "cards": [{"number": "1", "state": "activated"}, {"number": "2", "state": "blocked"}],
    }
    # When it is erased for exclusion
    after = erased_profile(profile, "excluded")
    # Then nothing personal is left, unknown fields included, and cards are deleted
    for field in ("email", "phone", "first_name", "last_name", "external_id", "device_id", "birthday"):
        assert field not in after
    assert after["attributes"] == {} and after["statuses"] == {} and after["marketing_consent"] is False
    assert after["cards"] == [{"number": "1", "state": "deleted"}, {"number": "2", "state": "deleted"}]
    assert (after["program_status"], after["version"]) == ("excluded", 4)
    # And the audit names the erased fields without their values
    names = erased_fields(profile)
    assert names == sorted(
        ["email", "phone", "first_name", "last_name", "external_id", "device_id", "attributes", "birthday"]
    )
    assert "a@example.com" not in str(names)


@pytest.mark.parametrize(
    ("reason", "stored"),
    [
        ("asked by phone", "asked by phone"),
        ("ANN LEE asked", ERASED_REASON),
        ("mail from a@example.com", ERASED_REASON),
        (None, None),
    ],
)
def test_a_reason_quoting_personal_data_is_replaced(reason: str | None, stored: str | None) -> None:
    assert scrub_text(reason, ["a@example.com", "Ann Lee", "Ann", "Lee"]) == stored
