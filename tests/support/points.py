"""A purchase body as a till sends it (`POST /v1/customers/{id}/purchases`), for tests and benchmarks."""

from __future__ import annotations

from typing import Any

OCCURRED_AT = "2026-11-30T10:00:00Z"


def purchase(external_id: str, eligible: float, **extra: Any) -> dict[str, Any]:
    """`eligible` of `amount` counts for points (amount at least 1); `extra` overrides fields."""
    return {
        "external_id": external_id,
        "occurred_at": OCCURRED_AT,
        "amount": max(eligible, 1),
        "eligible_amount": eligible,
        "currency": "EUR",
        **extra,
    }
