"""What exclusion erases (docs/design.md#program-status-lifecycle): the policy, no I/O.

An excluded profile keeps a whitelist of fields, so a field added later is erased by
default; identifiers are kept only as keyed hashes (suppression). Free text that quotes
the person is replaced, never kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from loyalty.domain.records import PERSON_IDENTIFIERS, IdentifierKind, ProfileRecord

# Identifiers whose lookups exclusion deletes; the person's are kept as suppression hashes.
ERASED_IDENTIFIERS: tuple[IdentifierKind, ...] = (*PERSON_IDENTIFIERS, "device_id")
SUPPRESSED_IDENTIFIERS = PERSON_IDENTIFIERS
PERSONAL_FIELDS = ("email", "phone", "first_name", "last_name", "external_id", "device_id")
# What an excluded profile keeps.
KEPT_ON_EXCLUSION = frozenset(
    {
        "business_id",
        "customer_id",
        "program_status",
        "version",
        "created_at",
        "updated_at",
        "cards",
        "statuses",
        "merged_into",
        "invitation_count",
        "invited_at",
        "last_invited_at",
        "terms_version",
        "terms_accepted_at",
        "last_change",
    }
)
ERASED_REASON = "[erased]"


def personal_values(profile: Mapping[str, Any]) -> list[str]:
    """The person's identifying values, as stored (what free text must not quote)."""
    return [str(profile[f]) for f in PERSONAL_FIELDS if profile.get(f)]


def erased_profile(profile: ProfileRecord, target: str) -> ProfileRecord:
    """The profile with every personal field dropped, statuses cleared and cards deleted."""
    after = cast(ProfileRecord, {k: v for k, v in profile.items() if k in KEPT_ON_EXCLUSION})
    after["program_status"] = target
    after["statuses"] = {}
    after["attributes"] = {}
    after["marketing_consent"] = False
    after["cards"] = [{"number": c["number"], "state": "deleted"} for c in profile.get("cards") or []]
    return after


def erased_fields(profile: Mapping[str, Any]) -> list[str]:
    """Names (never values) of the personal fields an exclusion removes, for the audit event."""
    return sorted(
        k
        for k, v in profile.items()
        if k not in KEPT_ON_EXCLUSION and not isinstance(v, bool) and v not in (None, "", {}, [])
    )


def quotes(text: str | None, values: Iterable[str]) -> bool:
    """Whether free text quotes any of the person's values (case-insensitive)."""
    if not text:
        return False
    lowered = text.lower()
    return any(v and len(v) >= 2 and v.lower() in lowered for v in values)


def scrub_text(text: str | None, values: Iterable[str]) -> str | None:
    """A reason that quotes personal data is not stored."""
    return ERASED_REASON if text is not None and quotes(text, values) else text
