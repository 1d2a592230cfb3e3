"""Identifier normalisation: the same person must map to the same lookup key."""

from __future__ import annotations

import re

_PHONE_JUNK = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_email(value: str) -> str:
    """Trim and lower-case; raise ValueError with a readable reason when invalid."""
    # Deferred: email_validator compiles its grammar at import (a tenth of a function's cold
    # init), and many invocations never see an address.
    from email_validator import EmailNotValidError, validate_email

    candidate = value.strip().lower()
    try:
        # No DNS: validation must not depend on the network (and Lambda cold starts).
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return candidate


def normalize_phone(value: str, default_country_code: str = "") -> str:
    """Normalise to E.164 where possible: strip punctuation, `00` -> `+`.

    A national number without a country code stays as digits unless the business gives a
    default country code; we do not guess countries.
    """
    raw = _PHONE_JUNK.sub("", value.strip())
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not raw.startswith("+") and default_country_code:
        raw = "+" + default_country_code.lstrip("+") + raw.lstrip("0")
    if raw.startswith("+"):
        if not _E164.match(raw):
            raise ValueError("not a valid phone number (E.164: + and 7 to 15 digits)")
        return raw
    if not raw.isdigit() or not 6 <= len(raw) <= 15:
        raise ValueError("not a valid phone number")
    return raw


def normalize_name(first: str | None, last: str | None) -> str:
    """Case-insensitive key for the name index: `first last`, lower-cased, single spaces."""
    return " ".join(" ".join(p for p in (first, last) if p).lower().split())
