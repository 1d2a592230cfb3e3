"""Helpers the tests share (imported as `tests.support`; conftest.py holds only fixtures).

The AWS side (the template's resources on moto, handlers invoked like Lambda) is the
local package's harness, which the benchmarks use too; this re-exports what tests need.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.harness import Api, ApiResponse, Aws, claims, table_items

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

__all__ = ["ROOT", "Api", "ApiResponse", "Aws", "claims", "load_event", "luhn_valid", "table_items"]


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` uses)."""
    return dict(json.loads((EVENTS / name).read_text()))


def luhn_valid(number: str) -> bool:
    """The Luhn check as the card networks state it: an oracle apart from the code under test."""
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0
