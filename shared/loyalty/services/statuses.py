"""Ranked statuses use cases: definitions, ranking, assignment (one, bulk, rules), entitlements,
background jobs (rule evaluation, re-rank, definition removal) and the expiry schedule.

Definitions change with one conditional write of the catalog item; customers change
through repository.customers.Write (version check + audit event + assignment items in
one transaction), several customers per transaction in bulk and background work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from loyalty import statuses
from loyalty.auth import ADMINS, ANY_ROLE, BACK_OFFICE, Principal, Role
from loyalty.clock import iso, new_id, now_iso
from loyalty.errors import (
    Conflict,
    DomainError,
    Duplicate,
    NotFound,
    ValidationFailed,
    VersionConflict,
    field_error,
)
from loyalty.lifecycle import ProgramStatus
from loyalty.models import Customer, StatusRef
from loyalty.normalize import normalize_email
from loyalty.observability import logger
from loyalty.repository import customers as customers_repo
from loyalty.repository import statuses as repo
from loyalty.services.customers import to_customer, visible_profile
from loyalty.services.status_rules import RULES_ACTOR, apply_rules, order_is_current, with_statuses
from loyalty.status_models import (
    MAX_DEFINITIONS,
    BulkAssignment,
    BulkFailure,
    BulkReport,
    Entitlement,
    Entitlements,
    StatusAssign,
    StatusCatalog,
    StatusDefinition,
    StatusDefinitionCreate,
    StatusDefinitionPatch,
    StatusJob,
    StatusOrder,
)

SYSTEM_ACTOR = {"sub": RULES_ACTOR, "role": "system"}
# Customers that can hold statuses; merged and excluded profiles are frozen.
HOLDING = [s.value for s in ProgramStatus if s not in (ProgramStatus.MERGED, ProgramStatus.EXCLUDED)]
PAGE_SIZE = 500
# A job step stops and re-queues itself when less than this is left of the invocation.
STEP_RESERVE_MS = 60_000
CATALOG_ATTEMPTS = 3
WRITE_ATTEMPTS = 3


# --- definitions -------------------------------------------------------------------------


def _job_view(item: Mapping[str, Any] | None) -> StatusJob | None:
    if not item:
        return None
    return StatusJob.model_validate({k: v for k, v in item.items() if k in StatusJob.model_fields})


def _definition_view(
    definition: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]], customer_view: bool = False
) -> StatusDefinition:
    data = {k: v for k, v in definition.items() if k in StatusDefinition.model_fields}
    data["job"] = None if customer_view else _job_view(jobs.get(definition.get("job_id", "")))
    if customer_view:
        data["rule"] = None  # how a status is earned is the business's own business
    return StatusDefinition.model_validate(data)


def _by_rank(definitions: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(definitions.values(), key=lambda d: int(d["rank"]))


def list_definitions(principal: Principal) -> StatusCatalog:
    """Every definition by rank with its latest job; a customer sees customer-facing ones only."""
    principal.require(ANY_ROLE)
    catalog = repo.get_catalog(principal.business_id)
    customer_view = principal.role is Role.CUSTOMER
    definitions = [
        d for d in _by_rank(catalog["definitions"]) if not customer_view or d.get("customer_facing")
    ]
    jobs: dict[str, dict[str, Any]] = {}
    if not customer_view:
        wanted = set(catalog["jobs"]) | {d["job_id"] for d in definitions if d.get("job_id")}
        jobs = repo.get_jobs(principal.business_id, sorted(wanted)) if wanted else {}
    return StatusCatalog(
        items=[_definition_view(d, jobs, customer_view) for d in definitions],
        version=int(catalog["version"]),
        deleting=[] if customer_view else list(catalog["deleting"]),
        jobs=[]
        if customer_view
        else [v for j in reversed(catalog["jobs"]) if (v := _job_view(jobs.get(j))) is not None],
    )


@dataclass
class CatalogChange:
    definitions: dict[str, dict[str, Any]]
    job_kind: str | None = None
    job_codes: list[str] = field(default_factory=list)
    deleting: list[str] | None = None


def _change_catalog(
    business_id: str, actor: dict[str, str], mutate: Callable[[dict[str, Any]], CatalogChange | None]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read, change and conditionally write the catalog (retried if someone wrote meanwhile).

    Returns the stored catalog and the job it started, if any; the job is queued after
    the write so the worker always sees the new catalog.
    """
    for attempt in range(CATALOG_ATTEMPTS):
        catalog = repo.get_catalog(business_id, consistent=True)
        change = mutate(catalog)
        if change is None:
            return catalog, None
        job = None
        jobs = list(catalog["jobs"])
        if change.job_kind:
            job = repo.job_item(business_id, new_id(), change.job_kind, change.job_codes, actor)
            jobs.append(job["job_id"])
            for code in change.job_codes:
                if code in change.definitions:
                    change.definitions[code] = {**change.definitions[code], "job_id": job["job_id"]}
        stored = {
            "definitions": change.definitions,
            "version": catalog["version"],
            "jobs": jobs,
            "deleting": catalog["deleting"] if change.deleting is None else change.deleting,
        }
        try:
            stored["version"] = repo.save_catalog(business_id, stored, job)
        except VersionConflict:
            if attempt + 1 >= CATALOG_ATTEMPTS:
                raise
            continue
        if job is not None:
            _start(job)
        return stored, job
    raise AssertionError("unreachable")  # pragma: no cover


def _start(job: dict[str, Any]) -> None:
    try:
        repo.enqueue(JobStep(job_id=job["job_id"], business_id=job["business_id"]).model_dump())
    except Exception:  # the change is stored; say plainly that its background part did not start
        logger.exception("could not queue status job")
        repo.finish_job(job["business_id"], job["job_id"], "failed", "could not queue the job")
        job["state"] = "failed"


def _rank_holder(definitions: Mapping[str, Mapping[str, Any]], rank: int, other_than: str) -> str | None:
    return next((c for c, d in definitions.items() if int(d["rank"]) == rank and c != other_than), None)


def _rank_taken(rank: int, holder: str) -> Duplicate:
    return Duplicate(
        f"rank {rank} is already held by status {holder}", {"field": "rank", "rank": rank, "code": holder}
    )


def _require_definition(catalog: Mapping[str, Any], code: str) -> dict[str, Any]:
    definition = catalog["definitions"].get(code)
    if definition is None:
        raise NotFound(f"status {code} is not defined", {"field": "code", "code": code})
    return dict(definition)


def create_definition(principal: Principal, body: StatusDefinitionCreate) -> StatusDefinition:
    principal.require(ADMINS)
    code = body.code

    def mutate(catalog: dict[str, Any]) -> CatalogChange:
        definitions = dict(catalog["definitions"])
        if code in definitions:
            raise Duplicate(f"status {code} already exists", {"field": "code", "code": code})
        if code in catalog["deleting"]:
            raise Conflict(
                f"status {code} is still being removed; create it again when its removal job completes",
                {"field": "code", "code": code},
            )
        if len(definitions) >= MAX_DEFINITIONS:
            raise Conflict(f"a business may define at most {MAX_DEFINITIONS} statuses", {"field": "code"})
        rank = body.rank or max((int(d["rank"]) for d in definitions.values()), default=0) + 1
        holder = _rank_holder(definitions, rank, code)
        if holder:
            raise _rank_taken(rank, holder)
        at = now_iso()
        definitions[code] = {
            "code": code,
            "name": body.name,
            "description": body.description,
            "rank": rank,
            "customer_facing": body.customer_facing,
            "modifiers": body.modifiers.model_dump(exclude_none=True),
            "created_at": at,
            "updated_at": at,
        }
        if body.rule is not None:
            definitions[code]["rule"] = statuses.rule_to_data(body.rule)
            return CatalogChange(definitions, "evaluate", [code])
        return CatalogChange(definitions)

    stored, job = _change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    return _definition_view(stored["definitions"][code], {job["job_id"]: job} if job else {})


def patch_definition(principal: Principal, code: str, body: StatusDefinitionPatch) -> StatusDefinition:
    principal.require(ADMINS)
    fields = body.model_fields_set

    def mutate(catalog: dict[str, Any]) -> CatalogChange | None:
        definitions = dict(catalog["definitions"])
        before = _require_definition(catalog, code)
        after = dict(before)
        for name in fields & {"name", "description", "customer_facing", "rank"}:
            after[name] = getattr(body, name)
        if "modifiers" in fields and body.modifiers is not None:
            modifiers = dict(before.get("modifiers") or {})
            for name in body.modifiers.model_fields_set:
                value = getattr(body.modifiers, name)
                if value is None:
                    modifiers.pop(name, None)
                else:
                    modifiers[name] = value
            after["modifiers"] = modifiers
        if "rule" in fields:
            if body.rule is None:
                after.pop("rule", None)
            else:
                after["rule"] = statuses.rule_to_data(body.rule)
        if int(after["rank"]) != int(before["rank"]):
            holder = _rank_holder(definitions, int(after["rank"]), code)
            if holder:
                raise _rank_taken(int(after["rank"]), holder)
        if after == before:
            return None
        after["updated_at"] = now_iso()
        definitions[code] = after
        if after.get("rule") != before.get("rule"):
            # The evaluation walk also refreshes every holder's order, so a rank change rides along.
            return CatalogChange(definitions, "evaluate", [code])
        if int(after["rank"]) != int(before["rank"]):
            return CatalogChange(definitions, "rerank", [code])
        return CatalogChange(definitions)

    stored, job = _change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    definition = _require_definition(stored, code)
    jobs = {job["job_id"]: job} if job else {}
    if not job and definition.get("job_id"):
        jobs = repo.get_jobs(principal.business_id, [definition["job_id"]])
    return _definition_view(definition, jobs)


def delete_definition(principal: Principal, code: str) -> StatusJob:
    """Remove the definition now (profiles stop showing it) and its assignments in the background."""
    principal.require(ADMINS)

    def mutate(catalog: dict[str, Any]) -> CatalogChange:
        _require_definition(catalog, code)
        definitions = {c: d for c, d in catalog["definitions"].items() if c != code}
        return CatalogChange(definitions, "delete", [code], sorted({*catalog["deleting"], code}))

    _, job = _change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    assert job is not None
    view = _job_view(job)
    assert view is not None
    return view


def reorder(principal: Principal, body: StatusOrder) -> StatusCatalog:
    """Rank every status at once (first code is rank 1): one conditional write."""
    principal.require(ADMINS)

    def mutate(catalog: dict[str, Any]) -> CatalogChange | None:
        problems = statuses.check_order(body.codes, catalog["definitions"])
        if problems:
            raise ValidationFailed(
                "codes must list every status exactly once: "
                + "; ".join(f"{kind}: {', '.join(codes)}" for kind, codes in problems.items()),
                [
                    {"field": "codes", "message": f"{kind}: {', '.join(codes)}", kind: codes}
                    for kind, codes in problems.items()
                ],
            )
        definitions = {c: dict(d) for c, d in catalog["definitions"].items()}
        moved = [c for rank, c in enumerate(body.codes, start=1) if int(definitions[c]["rank"]) != rank]
        if not moved:
            return None
        at = now_iso()
        for rank, code in enumerate(body.codes, start=1):
            if code in moved:
                definitions[code].update(rank=rank, updated_at=at)
        return CatalogChange(definitions, "rerank", moved)

    _change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    return list_definitions(principal)


# --- assignment by staff -----------------------------------------------------------------


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
    if profile["program_status"] not in HOLDING:
        raise Conflict(
            f"a {profile['program_status']} customer cannot hold statuses",
            {"program_status": profile["program_status"]},
        )


def _plan_assign(
    profile: dict[str, Any],
    code: str,
    definitions: Mapping[str, Mapping[str, Any]],
    actor: dict[str, str],
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
        entry=customers_repo.AuditEntry("status_assigned", actor, status, status, reason, details),
        extra=lambda tx: repo.stage_assignments(tx, after, [code], []),
    )


def _plan_remove(
    profile: dict[str, Any],
    code: str,
    definitions: Mapping[str, Mapping[str, Any]],
    actor: dict[str, str],
    reason: str | None,
    event: str = "status_removed",
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
    principal: Principal, customer_id: str, plan: Callable[[dict[str, Any]], customers_repo.Write | None]
) -> dict[str, Any]:
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
    _require_definition(catalog, code)
    expires_at = _future(body.expires_at)
    actor = principal.as_actor_record()
    stored = _change_one(
        principal,
        customer_id,
        lambda p: _plan_assign(p, code, catalog["definitions"], actor, expires_at, body.reason),
    )
    return to_customer(stored, principal, catalog)


def remove_status(principal: Principal, customer_id: str, code: str) -> Customer:
    principal.require(BACK_OFFICE)
    catalog = repo.get_catalog(principal.business_id)
    _require_definition(catalog, code)
    actor = principal.as_actor_record()

    def plan(profile: dict[str, Any]) -> customers_repo.Write | None:
        write = _plan_remove(profile, code, catalog["definitions"], actor, None)
        if write is None:
            raise NotFound(
                f"the customer does not hold status {code}", {"code": code, "customer_id": customer_id}
            )
        return write

    return to_customer(_change_one(principal, customer_id, plan), principal, catalog)


# --- many customers at once --------------------------------------------------------------


@dataclass
class Outcome:
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def rewrite_profiles(
    business_id: str,
    profiles: list[dict[str, Any]],
    plan: Callable[[dict[str, Any]], customers_repo.Write | None],
) -> Outcome:
    """Apply `plan` to each profile, several customers per transaction.

    Profiles may be stale (index pages, eventually consistent reads): the version
    condition catches that, and those customers are re-read and planned again.
    """
    outcome = Outcome()
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
        fresh = repo.get_profiles(business_id, result.conflicts)
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
    _require_definition(catalog, code)
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
    profiles = repo.get_profiles(bid, list(requested_ids)) if requested_ids else {}
    for cid, email in requested_ids.items():
        if cid not in profiles:
            errors.append(BulkFailure(customer_id=cid, email=email, message="customer not found"))

    def plan(profile: dict[str, Any]) -> customers_repo.Write | None:
        if body.action == "assign":
            return _plan_assign(profile, code, definitions, actor, expires_at, body.reason)
        return _plan_remove(profile, code, definitions, actor, body.reason)

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


# --- entitlements ------------------------------------------------------------------------


def get_entitlements(principal: Principal, customer_id: str) -> Entitlements:
    """Modifiers in force (statuses.entitlements documents the policy).

    A customer sees the statuses they may see; a modifier granted by a status that is
    not customer-facing still applies, but its code is not shown to them.
    """
    profile = visible_profile(principal, customer_id)
    catalog = repo.get_catalog(principal.business_id)
    definitions = catalog["definitions"]
    at = now_iso()
    assigned = profile.get("statuses") or {}
    live = {c: a for c, a in assigned.items() if not a.get("expires_at") or str(a["expires_at"]) > at}
    customer_view = principal.role is Role.CUSTOMER
    refs: list[StatusRef] = statuses.ranked(live, definitions, customer_facing_only=customer_view)
    granted = statuses.entitlements(live, definitions, at)

    def shown(code: str) -> str | None:
        visible = not customer_view or definitions.get(code, {}).get("customer_facing")
        return code if visible else None

    return Entitlements(
        customer_id=customer_id,
        best_status=statuses.best(refs),
        statuses=refs,
        modifiers={e.modifier: e.value for e in granted},
        entitlements=[
            Entitlement(modifier=e.modifier, value=e.value, granted_by=shown(e.granted_by)) for e in granted
        ],
    )


# --- background jobs ---------------------------------------------------------------------


class JobStep(BaseModel):
    """One RuleEvaluationQueue message: where a job's walk over customers stands."""

    job_id: str
    business_id: str
    position: int = 0
    cursor: str | None = None


def run_job_step(message: Mapping[str, Any], time_left_ms: Callable[[], int]) -> None:
    """Walk a job's customers page by page; re-queue the rest when time runs short.

    Re-running a page (an SQS redelivery) changes nothing more: each customer is compared
    with the current catalog, and only differences are written.
    """
    step = JobStep.model_validate(message)
    bid = step.business_id
    job = repo.get_jobs(bid, [step.job_id]).get(step.job_id)
    if job is None or job["state"] in ("completed", "failed"):
        return
    kind, codes = job["kind"], list(job["codes"])
    partitions = HOLDING if kind == "evaluate" else codes
    pages = 0
    while step.position < len(partitions):
        # At least one page per invocation, so a job always moves forward.
        if pages and time_left_ms() < STEP_RESERVE_MS:
            repo.enqueue(step.model_dump())
            return
        pages += 1
        catalog = repo.get_catalog(bid, consistent=True)
        definitions = catalog["definitions"]
        partition = partitions[step.position]
        if kind == "evaluate":
            page = repo.profiles_page(bid, partition, PAGE_SIZE, step.cursor)
            profiles = page.items
        else:
            page = repo.holders_page(bid, partition, PAGE_SIZE, step.cursor)
            found = repo.get_profiles(bid, [i["customer_id"] for i in page.items], consistent=False)
            profiles = list(found.values())
        plan = _job_plan(kind, codes, definitions)
        outcome = rewrite_profiles(bid, profiles, plan)
        repo.record_progress(bid, step.job_id, len(profiles), len(outcome.changed), len(outcome.failed))
        if page.next_cursor:
            step.cursor = page.next_cursor
        else:
            step.position, step.cursor = step.position + 1, None
    if kind == "delete":
        _done_deleting(bid, codes)
    repo.finish_job(bid, step.job_id)


def _job_plan(
    kind: str, codes: list[str], definitions: Mapping[str, Mapping[str, Any]]
) -> Callable[[dict[str, Any]], customers_repo.Write | None]:
    """What a job does to one customer. Audit events name the system actor: the admin who
    started the job is recorded on the job item."""

    def refresh(profile: dict[str, Any]) -> customers_repo.Write | None:
        if kind == "delete":
            return _plan_remove(profile, codes[0], definitions, SYSTEM_ACTOR, "status definition deleted")
        if profile.get("program_status") not in HOLDING:
            return None
        status = profile["program_status"]
        changes, update = apply_rules(profile, definitions, only=codes if kind == "evaluate" else [])
        if not changes and order_is_current(profile, definitions):
            return None
        event = "statuses_evaluated" if changes else "statuses_reranked"
        details = {"added": changes.added, "removed": changes.removed, "best_status": None}
        after = (
            update.after if changes else with_statuses(profile, profile.get("statuses") or {}, definitions)
        )
        details["best_status"] = after.get("best_status")
        return customers_repo.Write(
            after=after,
            before=profile,
            entry=customers_repo.AuditEntry(event, SYSTEM_ACTOR, status, status, None, details),
            extra=update.extra,
        )

    return refresh


def _done_deleting(business_id: str, codes: list[str]) -> None:
    def mutate(catalog: dict[str, Any]) -> CatalogChange | None:
        if not set(codes) & set(catalog["deleting"]):
            return None
        remaining = [c for c in catalog["deleting"] if c not in codes]
        return CatalogChange(dict(catalog["definitions"]), deleting=remaining)

    _change_catalog(business_id, SYSTEM_ACTOR, mutate)


# --- expiry schedule ---------------------------------------------------------------------


def expire_statuses(time_left_ms: Callable[[], int], now: str | None = None) -> dict[str, int]:
    """Remove assignments whose expires_at has passed (sparse GSI2 partition), with audit."""
    now = now or now_iso()
    removed = failed = 0
    cursor: str | None = None
    while time_left_ms() >= STEP_RESERVE_MS // 2:
        page = repo.expired_page(now, PAGE_SIZE, cursor)
        due: dict[str, dict[str, list[str]]] = {}
        for item in page.items:
            due.setdefault(item["business_id"], {}).setdefault(item["customer_id"], []).append(item["code"])
        for bid, customers in due.items():
            catalog = repo.get_catalog(bid)
            profiles = repo.get_profiles(bid, list(customers))

            def plan(
                profile: dict[str, Any],
                customers: dict[str, list[str]] = customers,
                definitions: Mapping[str, Any] = catalog["definitions"],
            ) -> customers_repo.Write | None:
                assigned = dict(profile.get("statuses") or {})
                gone = [
                    c
                    for c in customers[profile["customer_id"]]
                    if c in assigned
                    and assigned[c].get("expires_at")
                    and str(assigned[c]["expires_at"]) <= now
                ]
                if not gone:
                    return None
                for code in gone:
                    assigned.pop(code)
                after = with_statuses(profile, assigned, definitions)
                status = profile["program_status"]
                return customers_repo.Write(
                    after=after,
                    before=profile,
                    entry=customers_repo.AuditEntry(
                        "status_expired", SYSTEM_ACTOR, status, status, None, {"codes": gone}
                    ),
                    extra=lambda tx: repo.stage_assignments(tx, after, [], gone),
                )

            outcome = rewrite_profiles(bid, list(profiles.values()), plan)
            removed += len(outcome.changed)
            failed += len(outcome.failed)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return {"customers_changed": removed, "failed": failed}
