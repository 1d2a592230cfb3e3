"""Assigning and removing ranked statuses: one customer by staff, or many at once (bulk,
jobs, expiry), several customers per transaction, each under its version condition."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.domain.clock import iso, now_iso
from loyalty.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    VersionConflict,
    field_error,
)
from loyalty.domain.lifecycle import AuditKind, eligibility
from loyalty.domain.normalize import normalize_email
from loyalty.domain.principal import BACK_OFFICE, Principal
from loyalty.domain.records import ActorRecord, ProfileRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository import ranked_statuses as repo
from loyalty.schemas.customers import Customer
from loyalty.schemas.ranked_statuses import (
    BulkAssignment,
    BulkFailure,
    BulkReport,
    StatusAssign,
)
from loyalty.services.customers import to_customer, visible_profile
from loyalty.services.ranked_statuses.definitions import require_definition
from loyalty.services.ranked_statuses.rules import with_statuses
from loyalty.services.tiers.ladder import refuse_tier_code

WRITE_ATTEMPTS = 3


def _future(expires_at: datetime | None, name: str = "expires_at") -> str | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise field_error(name, "give a time zone (e.g. 2030-01-01T00:00:00Z)")
    stamp = iso(expires_at.astimezone(UTC))
    if stamp <= now_iso():
        raise field_error(name, "must be in the future")
    return stamp


def _holdable(profile: Mapping[str, Any]) -> None:
    if not eligibility(profile["program_status"]).holds_statuses:
        raise Conflict(
            f"a {profile['program_status']} customer cannot hold statuses",
            {"program_status": profile["program_status"]},
        )


def plan_assign(
    profile: ProfileRecord,
    code: str,
    definitions: Mapping[str, Mapping[str, Any]],
    actor: ActorRecord,
    expires_at: str | None,
    reason: str | None,
) -> customers_repo.Write | None:
    _holdable(profile)
    assigned = dict(profile.get("statuses") or {})
    current = assigned.get(code)
    if current and current.get("source") == "manual" and current.get("expires_at") == expires_at:
        return None  # already exactly so: no version bump, no event
    assigned[code] = {
        "source": "manual",
        "assigned_by": actor["sub"],
        "assigned_at": now_iso(),
        "expires_at": expires_at,
    }
    after = with_statuses(profile, assigned, definitions)
    details: dict[str, Any] = {"code": code, "source": "manual"}
    if expires_at:
        details["expires_at"] = expires_at
    if current:
        details["previous_source"] = current.get("source")
    status = profile["program_status"]
    return customers_repo.Write(
        after=after,
        before=profile,
        entry=customers_repo.AuditEntry(AuditKind.STATUS_ASSIGNED, actor, status, status, reason, details),
        extra=lambda tx: repo.stage_assignments(tx, after, [code], []),
    )


def plan_remove(
    profile: ProfileRecord,
    code: str,
    definitions: Mapping[str, Mapping[str, Any]],
    actor: ActorRecord,
    reason: str | None,
    event: AuditKind = AuditKind.STATUS_REMOVED,
) -> customers_repo.Write | None:
    assigned = dict(profile.get("statuses") or {})
    current = assigned.pop(code, None)
    if current is None:
        return None
    after = with_statuses(profile, assigned, definitions)
    status = profile["program_status"]
    return customers_repo.Write(
        after=after,
        before=profile,
        entry=customers_repo.AuditEntry(
            event, actor, status, status, reason, {"code": code, "source": current.get("source")}
        ),
        extra=lambda tx: repo.stage_assignments(tx, after, [], [code]),
    )


def _change_one(
    principal: Principal, customer_id: str, plan: Callable[[ProfileRecord], customers_repo.Write | None]
) -> ProfileRecord:
    for attempt in range(WRITE_ATTEMPTS):
        profile = visible_profile(principal, customer_id, consistent=True)
        write = plan(profile)
        if write is None:
            return profile
        try:
            return customers_repo.commit(write)
        except VersionConflict:
            if attempt + 1 >= WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def assign_status(principal: Principal, customer_id: str, code: str, body: StatusAssign) -> Customer:
    principal.require(BACK_OFFICE)
    catalog = repo.get_catalog(principal.business_id)
    require_definition(catalog, code)
    refuse_tier_code(catalog, code)
    expires_at = _future(body.expires_at)
    actor = principal.as_actor_record()
    stored = _change_one(
        principal,
        customer_id,
        lambda p: plan_assign(p, code, catalog["definitions"], actor, expires_at, body.reason),
    )
    return to_customer(stored, principal, catalog)


def remove_status(principal: Principal, customer_id: str, code: str) -> Customer:
    principal.require(BACK_OFFICE)
    catalog = repo.get_catalog(principal.business_id)
    require_definition(catalog, code)
    refuse_tier_code(catalog, code)
    actor = principal.as_actor_record()

    def plan(profile: ProfileRecord) -> customers_repo.Write | None:
        write = plan_remove(profile, code, catalog["definitions"], actor, None)
        if write is None:
            raise NotFound(
                f"the customer does not hold status {code}", {"code": code, "customer_id": customer_id}
            )
        return write

    return to_customer(_change_one(principal, customer_id, plan), principal, catalog)


@dataclass
class RewriteResult:
    changed: list[ProfileRecord] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def rewrite_profiles(
    business_id: str,
    profiles: list[ProfileRecord],
    plan: Callable[[ProfileRecord], customers_repo.Write | None],
) -> RewriteResult:
    """Apply `plan` to each profile, several customers per transaction.

    Profiles may be stale (index pages, eventually consistent reads): the version
    condition catches that, and those customers are re-read and planned again.
    """
    outcome = RewriteResult()
    pending = profiles
    for attempt in range(WRITE_ATTEMPTS):
        writes = []
        for profile in pending:
            try:
                write = plan(profile)
            except DomainError as exc:
                outcome.failed[profile["customer_id"]] = exc.message
                continue
            if write is None:
                outcome.unchanged.append(profile["customer_id"])
            else:
                writes.append(write)
        if not writes:
            break
        result = repo.commit_group(writes)
        outcome.changed.extend(result.committed)
        outcome.failed.update(result.failed)
        if not result.conflicts:
            break
        if attempt + 1 >= WRITE_ATTEMPTS:
            for cid in result.conflicts:
                outcome.failed[cid] = "the customer changed concurrently; retry"
            break
        fresh = customers_repo.get_profiles(business_id, result.conflicts)
        for cid in result.conflicts:
            if cid not in fresh:
                outcome.failed[cid] = "customer not found"
        pending = list(fresh.values())
    return outcome


def bulk_assignments(principal: Principal, code: str, body: BulkAssignment) -> BulkReport:
    """Assign or remove one status for up to 10,000 customers, reporting each failure."""
    principal.require(BACK_OFFICE)
    bid = principal.business_id
    catalog = repo.get_catalog(bid)
    require_definition(catalog, code)
    refuse_tier_code(catalog, code)
    definitions = catalog["definitions"]
    expires_at = _future(body.expires_at) if body.action == "assign" else None
    actor = principal.as_actor_record()
    errors: list[BulkFailure] = []

    by_email: dict[str, str] = {}
    for raw in dict.fromkeys(body.emails):
        try:
            by_email[raw] = normalize_email(raw)
        except ValueError:
            errors.append(BulkFailure(email=raw, message="not a valid e-mail address"))
    owners = repo.find_by_emails(bid, sorted(set(by_email.values()))) if by_email else {}
    requested_ids: dict[str, str | None] = dict.fromkeys(body.customer_ids)
    for raw, normalized in by_email.items():
        cid = owners.get(normalized)
        if cid is None:
            errors.append(BulkFailure(email=raw, message="no customer has this e-mail"))
        else:
            requested_ids.setdefault(cid, raw)
    profiles = customers_repo.get_profiles(bid, list(requested_ids)) if requested_ids else {}
    for cid, email in requested_ids.items():
        if cid not in profiles:
            errors.append(BulkFailure(customer_id=cid, email=email, message="customer not found"))

    def plan(profile: ProfileRecord) -> customers_repo.Write | None:
        if body.action == "assign":
            return plan_assign(profile, code, definitions, actor, expires_at, body.reason)
        return plan_remove(profile, code, definitions, actor, body.reason)

    outcome = rewrite_profiles(bid, list(profiles.values()), plan)
    errors.extend(
        BulkFailure(customer_id=cid, email=requested_ids.get(cid), message=message)
        for cid, message in outcome.failed.items()
    )
    return BulkReport(
        code=code,
        action=body.action,
        requested=len(body.customer_ids) + len(body.emails),
        changed=len(outcome.changed),
        unchanged=len(outcome.unchanged),
        failed=len(errors),
        errors=errors,
    )
