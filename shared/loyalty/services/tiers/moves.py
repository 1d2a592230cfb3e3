"""Staging a tier outcome: the tier record under its version, its tier events and, when the
effective tier moved, the profile (the tier is a ranked status with `source: "tier"`, so the
best status, entitlements and `customer.statuses_changed` follow) with its assignment items
and an audit event. Everything goes into the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from loyalty.domain import tiers
from loyalty.domain.lifecycle import AuditKind, eligibility
from loyalty.domain.records import ActorRecord, CatalogRecord, ProfileRecord
from loyalty.domain.tiers import Ladder, Move, Outcome, TierRecord, ranks_of
from loyalty.repository import customers as customers_repo
from loyalty.repository import ranked_statuses as statuses_repo
from loyalty.repository import tiers as repo
from loyalty.repository.base import Transaction
from loyalty.services.ranked_statuses.rules import with_statuses


def ladder_of(catalog: CatalogRecord, time_zone: str) -> Ladder | None:
    return Ladder.of(catalog.get("tiers"), time_zone)


def holds(profile: Mapping[str, Any] | None) -> bool:
    return profile is not None and eligibility(profile["program_status"]).holds_statuses


def held_tier(profile: Mapping[str, Any]) -> str | None:
    """The tier code the profile holds (at most one status has `source: "tier"`)."""
    return next((c for c, a in (profile.get("statuses") or {}).items() if a.get("source") == "tier"), None)


def profile_write(
    profile: ProfileRecord, outcome: Outcome, definitions: Mapping[str, Any], actor: ActorRecord, at: str
) -> customers_repo.Write | None:
    before, after_code = held_tier(profile), outcome.record.get("effective")
    if before == after_code:
        return None
    assigned = dict(profile.get("statuses") or {})
    if before:
        assigned.pop(before)
    if after_code:
        assigned[after_code] = {"source": "tier", "assigned_by": actor["sub"], "assigned_at": at}
    after = with_statuses(profile, assigned, definitions)
    moved = [e for e in outcome.events if e.move is not Move.RETAINED]
    details = {
        "from_tier": before,
        "to_tier": after_code,
        "move": moved[-1].move.value if moved else None,
        "cause": moved[-1].reason if moved else None,
    }
    status = profile["program_status"]
    put, delete = [after_code] if after_code else [], [before] if before else []
    return customers_repo.Write(
        after=after,
        before=profile,
        entry=customers_repo.AuditEntry(AuditKind.TIER_CHANGED, actor, status, status, None, details),
        extra=lambda tx: statuses_repo.stage_assignments(tx, after, put, delete),
    )


def stage_outcome(
    tx: Transaction,
    read_version: int,
    outcome: Outcome,
    profile: ProfileRecord | None,
    definitions: Mapping[str, Any],
    actor: ActorRecord,
    at: str,
) -> tuple[TierRecord, ProfileRecord | None]:
    """Stage the record (and the profile when the effective tier moved); the stored profile
    is returned when it was staged, so a caller does not also stage a check of it."""
    record = outcome.record
    stored_profile: ProfileRecord | None = None
    write = profile_write(profile, outcome, definitions, actor, at) if profile is not None else None
    snapshot = profile
    if write is not None:
        stored_profile = snapshot = customers_repo.stage(tx, write, at)
    if snapshot is not None:
        record = cast(
            TierRecord,
            {
                **record,
                "profile_version": snapshot["version"],
                "status_order": list(snapshot.get("status_order") or []),
                "holds": holds(snapshot),
                "program_status": snapshot["program_status"],
            },
        )
    record = repo.stage_events(tx, record, outcome.events, at, actor)
    return repo.stage_record(tx, record, read_version), stored_profile


def after_activity(
    record: TierRecord | None,
    catalog: CatalogRecord,
    profile: ProfileRecord,
    at: str,
    occurred_at: str,
    spend: Decimal,
    points: int,
    time_zone: str,
) -> Outcome:
    """A purchase (or a return: negative amounts) in its month, then an upgrade if it reached one."""
    rec = cast(
        TierRecord,
        dict(repo.or_empty(record, profile["business_id"], profile["customer_id"])),
    )
    rec["months"] = {k: dict(v) for k, v in (rec.get("months") or {}).items()}
    ladder = ladder_of(catalog, time_zone)
    zone = ladder.zone if ladder else ZoneInfo(time_zone)
    tiers.add_activity(rec, occurred_at, zone, spend, points)
    if ladder is None:
        return Outcome(rec)
    if spend < 0 or points < 0:
        return Outcome(rec)  # a return lowers the value now; only the retention check downgrades
    return tiers.on_activity(rec, ladder, ranks_of(catalog["definitions"]), at, holds(profile))
