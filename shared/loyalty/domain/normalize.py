"""One canonical form per identifier (docs/design.md#trust-and-identity): the same person maps
to the same lookup key, suppression hash and search entry however the value was typed.

E-mail: NFKC (full-width letters become ASCII), lower-cased, the domain in IDNA (punycode).
Phone: NFKC and every decimal digit folded to ASCII (Arabic-Indic, full-width...), then E.164
where possible. Names for search: case- and accent-insensitive words.
"""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

_PHONE_JUNK = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_email(value: str) -> str:
    """The canonical address; raise ValueError with a readable reason when invalid."""
    candidate = unicodedata.normalize("NFKC", value).strip().lower()
    try:
        # No DNS: validation must not depend on the network (and Lambda cold starts).
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return f"{checked.local_part}@{checked.ascii_domain}".lower()


def fold_digits(value: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit."""
    folded = unicodedata.normalize("NFKC", value)
    return "".join(str(d) if (d := unicodedata.decimal(ch, None)) is not None else ch for ch in folded)


def normalize_phone(value: str, default_country_code: str = "") -> str:
    """Normalise to E.164 where possible: digits folded, punctuation stripped, `00` -> `+`.

    A national number without a country code stays as digits unless the business gives a
    default country code; we do not guess countries.
    """
    raw = _PHONE_JUNK.sub("", fold_digits(value).strip())
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not raw.startswith("+") and default_country_code:
        raw = "+" + default_country_code.lstrip("+") + raw.lstrip("0")
    if raw.startswith("+"):
        if not _E164.match(raw):
            raise ValueError("not a valid phone number (E.164: + and 7 to 15 digits)")
        return raw
    if not (raw.isascii() and raw.isdigit()) or not 6 <= len(raw) <= 15:
        raise ValueError("not a valid phone number")
    return raw


# Letters that carry their "accent" in the letter itself, so decomposition leaves them whole;
# staff type the plain letters (Ørsted as orsted, Łukasz as lukasz).
_PLAIN_LETTERS = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "\u0131": "i", "ħ": "h"}
)


def search_words(*parts: str | None) -> list[str]:
    """The words of a name as search matches them: NFKC, accents stripped, lower-cased."""
    text = unicodedata.normalize("NFKD", " ".join(p for p in parts if p))
    plain = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", plain).casefold().translate(_PLAIN_LETTERS).split()
