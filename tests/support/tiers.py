"""A business's tier setup as the tiers tests and benchmark use it: points settings that never
expire, and a bronze-silver-gold ladder by eligible spend over 12 months (listed out of rank
order on purpose: the ladder orders tiers by their statuses' ranks)."""

from __future__ import annotations

from typing import Any

POINTS_SETTINGS: dict[str, Any] = {
    "points_per_unit": 1,
    "rounding": "down",
    "pending_days": 0,
    "expiry": {"policy": "never"},
    "return_policy": "allow_debt",
    "reminder_days": [],
    "time_zone": "Europe/Paris",
}
LADDER: dict[str, Any] = {
    "basis": "eligible_spend",
    "window_months": 12,
    "retention": "anniversary",
    "retention_months": 12,
    "downgrade": "one_down",
    "tiers": [
        {"code": "gold", "attain": 1000, "maintain": 800},
        {"code": "bronze", "attain": 0, "maintain": 0},
        {"code": "silver", "attain": 500, "maintain": 400},
    ],
}
