"""Ranked-status definitions: create, change, remove, re-rank. The whole catalog is one
item, so each change is one conditional write (ranks unique by construction); a change that
needs work over customers records a job in the same write and queues it after."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from loyalty.adapters import queues
from loyalty.domain import ranked_statuses, tiers
from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.errors import (
    Conflict,
    Duplicate,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from loyalty.domain.principal import ADMINS, ANY_ROLE, Principal, Role
from loyalty.domain.records import ActorRecord, CatalogRecord, StatusDefinitionRecord, StatusJobRecord
from loyalty.observability import logger
from loyalty.repository import ranked_statuses as repo
from loyalty.schemas.ranked_statuses import (
    MAX_DEFINITIONS,
    JobStep,
    StatusCatalog,
    StatusDefinition,
    StatusDefinitionCreate,
    StatusDefinitionPatch,
    StatusJob,
    StatusOrder,
    rule_to_data,
)

CATALOG_ATTEMPTS = 3


def _keeps_ladder(catalog: CatalogRecord, definitions: Mapping[str, Any]) -> None:
    """A definition change or re-rank may not break the tier ladder: a tier given by a rule,
    or thresholds that no longer rise as the rank improves (409 naming what breaks)."""
    problems = tiers.ladder_problems((catalog.get("tiers") or {}).get("tiers") or [], definitions)
    if problems:
        raise Conflict(
            "this change breaks the tier ladder: " + "; ".join(m for _, m in problems),
            {"field": "tiers", "problems": [m for _, m in problems]},
        )


def job_view(item: Mapping[str, Any] | None) -> StatusJob | None:
    if not item:
        return None
    return StatusJob.model_validate({k: v for k, v in item.items() if k in StatusJob.model_fields})


def _definition_view(
    definition: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]], customer_view: bool = False
) -> StatusDefinition:
    data = {k: v for k, v in definition.items() if k in StatusDefinition.model_fields}
    data["job"] = None if customer_view else job_view(jobs.get(definition.get("job_id", "")))
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
    jobs: dict[str, StatusJobRecord] = {}
    if not customer_view:
        wanted = set(catalog["jobs"]) | {d["job_id"] for d in definitions if d.get("job_id")}
        jobs = repo.get_jobs(principal.business_id, sorted(wanted)) if wanted else {}
    return StatusCatalog(
        items=[_definition_view(d, jobs, customer_view) for d in definitions],
        version=int(catalog["version"]),
        deleting=[] if customer_view else list(catalog["deleting"]),
        jobs=[]
        if customer_view
        else [v for j in reversed(catalog["jobs"]) if (v := job_view(jobs.get(j))) is not None],
    )


@dataclass
class CatalogChange:
    definitions: dict[str, StatusDefinitionRecord]
    job_kind: str | None = None
    job_codes: list[str] = field(default_factory=list)
    deleting: list[str] | None = None
    tiers: dict[str, Any] | None = None
    set_tiers: bool = False  # `tiers` replaces the ladder (None removes it)


def change_catalog(
    business_id: str, actor: ActorRecord, mutate: Callable[[CatalogRecord], CatalogChange | None]
) -> tuple[CatalogRecord, StatusJobRecord | None]:
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
        stored: CatalogRecord = {
            "definitions": change.definitions,
            "version": catalog["version"],
            "jobs": jobs,
            "deleting": catalog["deleting"] if change.deleting is None else change.deleting,
            "tiers": change.tiers if change.set_tiers else catalog.get("tiers"),
        }
        try:
            stored["version"] = repo.save_catalog(business_id, stored, job)
        except VersionConflict:
            if attempt + 1 >= CATALOG_ATTEMPTS:
                raise
            continue
        if job is not None:
            start_job(job)
        return stored, job
    raise AssertionError("unreachable")  # pragma: no cover


def start_job(job: StatusJobRecord) -> None:
    try:
        queues.run_status_job(JobStep(job_id=job["job_id"], business_id=job["business_id"]).model_dump())
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


def require_definition(catalog: CatalogRecord, code: str) -> StatusDefinitionRecord:
    definition = catalog["definitions"].get(code)
    if definition is None:
        raise NotFound(f"status {code} is not defined", {"field": "code", "code": code})
    return definition.copy()


def create_definition(principal: Principal, body: StatusDefinitionCreate) -> StatusDefinition:
    principal.require(ADMINS)
    code = body.code

    def mutate(catalog: CatalogRecord) -> CatalogChange:
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
            definitions[code]["rule"] = rule_to_data(body.rule)
            return CatalogChange(definitions, "evaluate", [code])
        return CatalogChange(definitions)

    stored, job = change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    return _definition_view(stored["definitions"][code], {job["job_id"]: job} if job else {})


def patch_definition(principal: Principal, code: str, body: StatusDefinitionPatch) -> StatusDefinition:
    principal.require(ADMINS)
    fields = body.model_fields_set

    def mutate(catalog: CatalogRecord) -> CatalogChange | None:
        definitions = dict(catalog["definitions"])
        before = require_definition(catalog, code)
        after: dict[str, Any] = dict(before)  # fields set by name from the patch
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
                after["rule"] = rule_to_data(body.rule)
        if int(after["rank"]) != before["rank"]:
            holder = _rank_holder(definitions, int(after["rank"]), code)
            if holder:
                raise _rank_taken(int(after["rank"]), holder)
        if after == before:
            return None
        after["updated_at"] = now_iso()
        definitions[code] = cast(StatusDefinitionRecord, after)
        _keeps_ladder(catalog, definitions)
        if after.get("rule") != before.get("rule"):
            # The evaluation walk also refreshes every holder's order, so a rank change rides along.
            return CatalogChange(definitions, "evaluate", [code])
        if int(after["rank"]) != before["rank"]:
            return CatalogChange(definitions, "rerank", [code])
        return CatalogChange(definitions)

    stored, job = change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    definition = require_definition(stored, code)
    jobs = {job["job_id"]: job} if job else {}
    if not job and definition.get("job_id"):
        jobs = repo.get_jobs(principal.business_id, [definition["job_id"]])
    return _definition_view(definition, jobs)


def delete_definition(principal: Principal, code: str) -> StatusJob:
    """Remove the definition now (profiles stop showing it) and its assignments in the background."""
    principal.require(ADMINS)

    def mutate(catalog: CatalogRecord) -> CatalogChange:
        require_definition(catalog, code)
        if code in tiers.codes_of(catalog.get("tiers")):
            raise Conflict(
                f"status {code} is a tier; take it out of the ladder (PUT /v1/tiers) first",
                {"field": "code", "code": code},
            )
        definitions = {c: d for c, d in catalog["definitions"].items() if c != code}
        return CatalogChange(definitions, "delete", [code], sorted({*catalog["deleting"], code}))

    _, job = change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    assert job is not None
    view = job_view(job)
    assert view is not None
    return view


def reorder(principal: Principal, body: StatusOrder) -> StatusCatalog:
    """Rank every status at once (first code is rank 1): one conditional write."""
    principal.require(ADMINS)

    def mutate(catalog: CatalogRecord) -> CatalogChange | None:
        problems = ranked_statuses.check_order(body.codes, catalog["definitions"])
        if problems:
            raise ValidationFailed(
                "codes must list every status exactly once: "
                + "; ".join(f"{kind}: {', '.join(codes)}" for kind, codes in problems.items()),
                [
                    {"field": "codes", "message": f"{kind}: {', '.join(codes)}", kind: codes}
                    for kind, codes in problems.items()
                ],
            )
        definitions = {c: d.copy() for c, d in catalog["definitions"].items()}
        moved = [c for rank, c in enumerate(body.codes, start=1) if definitions[c]["rank"] != rank]
        if not moved:
            return None
        at = now_iso()
        for rank, code in enumerate(body.codes, start=1):
            if code in moved:
                definitions[code]["rank"], definitions[code]["updated_at"] = rank, at
        _keeps_ladder(catalog, definitions)
        return CatalogChange(definitions, "rerank", moved)

    change_catalog(principal.business_id, principal.as_actor_record(), mutate)
    return list_definitions(principal)
