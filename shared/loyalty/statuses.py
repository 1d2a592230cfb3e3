"""Ranked statuses (DESIGN.md "Statuses"): ordering and the best status. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loyalty.models import StatusRef


def ranked(
    assigned: Mapping[str, Mapping[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]],
    customer_facing_only: bool = False,
) -> list[StatusRef]:
    """Assigned statuses that still have a definition, ordered by rank (1 first)."""
    refs = []
    for code, assignment in assigned.items():
        definition = definitions.get(code)
        if definition is None:
            continue  # definition deleted: its assignments are being cleaned up
        if customer_facing_only and not definition.get("customer_facing", False):
            continue
        refs.append(
            StatusRef(
                code=code,
                name=str(definition.get("name", code)),
                rank=int(definition["rank"]),
                expires_at=assignment.get("expires_at"),
            )
        )
    return sorted(refs, key=lambda r: r.rank)


def best(refs: list[StatusRef]) -> str | None:
    return refs[0].code if refs else None
