"""Background work over a business's customers: status jobs (rule evaluation, re-rank,
definition removal) walked page by page through the RuleEvaluationQueue, and the expiry
schedule that removes assignments whose time has passed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loyalty.adapters import queues
from loyalty.domain.clock import now_iso
from loyalty.domain.lifecycle import AuditKind, eligibility, statuses_where
from loyalty.domain.principal import RULES_ACTOR
from loyalty.domain.records import CatalogRecord, ProfileRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository import ranked_statuses as repo
from loyalty.schemas.ranked_statuses import (
    JobStep,
)
from loyalty.services.ranked_statuses.assignment import plan_remove, rewrite_profiles
from loyalty.services.ranked_statuses.definitions import CatalogChange, change_catalog
from loyalty.services.ranked_statuses.rules import apply_rules, order_is_current, with_statuses
from loyalty.services.tiers import evaluation

PAGE_SIZE = 500
# A job step stops and re-queues itself when less than this is left of the invocation.
STEP_RESERVE_MS = 60_000


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
    if kind == "tiers":
        evaluation.run_step(step, time_left_ms)
        return
    partitions = [s.value for s in statuses_where("holds_statuses")] if kind == "evaluate" else codes
    pages = 0
    while step.position < len(partitions):
        # At least one page per invocation, so a job always moves forward.
        if pages and time_left_ms() < STEP_RESERVE_MS:
            queues.run_status_job(step.model_dump())
            return
        pages += 1
        catalog = repo.get_catalog(bid, consistent=True)
        definitions = catalog["definitions"]
        partition = partitions[step.position]
        if kind == "evaluate":
            page = repo.profiles_page(bid, partition, PAGE_SIZE, step.cursor)
            profiles, next_cursor = page.items, page.next_cursor
        else:
            holders = repo.holders_page(bid, partition, PAGE_SIZE, step.cursor)
            wanted = [i["customer_id"] for i in holders.items]
            profiles = list(customers_repo.get_profiles(bid, wanted, consistent=False).values())
            next_cursor = holders.next_cursor
        plan = _job_plan(kind, codes, definitions)
        outcome = rewrite_profiles(bid, profiles, plan)
        repo.record_progress(bid, step.job_id, len(profiles), len(outcome.changed), len(outcome.failed))
        if next_cursor:
            step.cursor = next_cursor
        else:
            step.position, step.cursor = step.position + 1, None
    if kind == "delete":
        _done_deleting(bid, codes)
    repo.finish_job(bid, step.job_id)


def _job_plan(
    kind: str, codes: list[str], definitions: Mapping[str, Mapping[str, Any]]
) -> Callable[[ProfileRecord], customers_repo.Write | None]:
    """What a job does to one customer. Audit events name the system actor: the admin who
    started the job is recorded on the job item."""

    def refresh(profile: ProfileRecord) -> customers_repo.Write | None:
        if kind == "delete":
            return plan_remove(profile, codes[0], definitions, RULES_ACTOR, "status definition deleted")
        if not eligibility(profile["program_status"]).holds_statuses:
            return None
        status = profile["program_status"]
        changes, update = apply_rules(profile, definitions, only=codes if kind == "evaluate" else [])
        if not changes and order_is_current(profile, definitions):
            return None
        event = AuditKind.STATUSES_EVALUATED if changes else AuditKind.STATUSES_RERANKED
        after = (
            update.after if changes else with_statuses(profile, profile.get("statuses") or {}, definitions)
        )
        details = {
            "added": changes.added,
            "removed": changes.removed,
            "best_status": after.get("best_status"),
        }
        return customers_repo.Write(
            after=after,
            before=profile,
            entry=customers_repo.AuditEntry(event, RULES_ACTOR, status, status, None, details),
            extra=update.extra,
        )

    return refresh


def _done_deleting(business_id: str, codes: list[str]) -> None:
    def mutate(catalog: CatalogRecord) -> CatalogChange | None:
        if not set(codes) & set(catalog["deleting"]):
            return None
        remaining = [c for c in catalog["deleting"] if c not in codes]
        return CatalogChange(dict(catalog["definitions"]), deleting=remaining)

    change_catalog(business_id, RULES_ACTOR, mutate)


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
            profiles = customers_repo.get_profiles(bid, list(customers))

            def plan(
                profile: ProfileRecord,
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
                        AuditKind.STATUS_EXPIRED, RULES_ACTOR, status, status, None, {"codes": gone}
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
