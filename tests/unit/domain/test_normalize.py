"""Identifier normalisation (loyalty.domain.normalize): pure code, no AWS."""

from __future__ import annotations

import pytest

from loyalty.domain.normalize import normalize_email, normalize_name, normalize_phone


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
