"""Identifier normalisation (loyalty.domain.normalize): pure code, no AWS."""

from __future__ import annotations

import pytest

from loyalty.domain.normalize import normalize_email, normalize_phone, search_words


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


def test_search_words_ignore_case_accents_and_spacing() -> None:
    assert search_words("  Ann ", "LEE") == ["ann", "lee"]
    assert search_words("Zoë", "Ångström-Müller") == ["zoe", "angstrom-muller"]
    assert search_words("\uff21\uff2e\uff2e", None) == ["ann"]  # full-width
    assert search_words("Ørsted", "Łukasz Æbeltoft") == ["orsted", "lukasz", "aebeltoft"]
    assert search_words(None, None) == []
