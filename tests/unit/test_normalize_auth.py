"""Identifier normalisation, claims parsing and cursors: pure code, no AWS."""

from __future__ import annotations

import pytest

from loyalty.auth import BACK_OFFICE, Role, principal_from_claims
from loyalty.errors import BadRequest, Forbidden, NotFound, Unauthorized
from loyalty.normalize import normalize_email, normalize_name, normalize_phone
from loyalty.repository.base import decode_cursor, encode_cursor


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    with pytest.raises(ValueError, match="not a valid e-mail"):
        normalize_email("ann-at-example.com")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 (20) 7946-0958", "+442079460958"),
        ("555-0100", "5550100"),
    ],
)
def test_phone_is_normalised_to_e164_where_possible(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_phone_with_default_country_and_garbage() -> None:
    assert normalize_phone("020 7946 0958", default_country_code="44") == "+442079460958"
    with pytest.raises(ValueError):
        normalize_phone("+12")
    with pytest.raises(ValueError):
        normalize_phone("call me")


def test_name_key_is_case_and_space_insensitive() -> None:
    assert normalize_name("  Ann ", "LEE") == "ann lee"
    assert normalize_name(None, None) == ""


def test_claims_become_a_principal() -> None:
    principal = principal_from_claims({"sub": "u1", "business_id": "b1", "role": "staff"})
    assert principal.role is Role.STAFF
    assert principal.require(BACK_OFFICE) is principal


@pytest.mark.parametrize(
    "claims", [None, {}, {"sub": "u", "business_id": "b"}, {"sub": "u", "business_id": "b", "role": "root"}]
)
def test_missing_or_bad_claims_are_unauthorized(claims: dict[str, str] | None) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


def test_customers_act_only_on_themselves() -> None:
    me = principal_from_claims({"sub": "c1", "business_id": "b1", "role": "customer"})
    assert me.require_self_or("c1", BACK_OFFICE) is me
    # Another customer's id looks like it does not exist (no enumeration)
    with pytest.raises(NotFound):
        me.require_self_or("c2", BACK_OFFICE)
    with pytest.raises(Forbidden):
        me.require(BACK_OFFICE)


def test_cursor_round_trip_and_tampering() -> None:
    key = {"PK": {"S": "B#b1#C#c1"}, "SK": {"S": "Z#EVT#0000000003"}}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, "B#b1#C#c1") == key
    # A cursor of another list (or business) is refused
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "B#b2#C#c1")
    with pytest.raises(BadRequest):
        decode_cursor("not-a-cursor!!")
