"""Re-evaluating customers after the ladder changed: nothing moves by itself. A dry run answers
who would move (counts and the first customers); otherwise a status job walks the tier
records shard by shard through the RuleEvaluationQueue, with progress on the job."""

from __future__ import annotations

from collections.abc import Callable

from loyalty.adapters import queues
from loyalty.domain import tiers
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.principal import ADMINS, TIERS_ACTOR, Principal
from loyalty.domain.records import CatalogRecord
from loyalty.domain.tiers import Ladder, TierRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository import keys
from loyalty.repository import points as points_repo
from loyalty.repository import ranked_statuses as statuses_repo
from loyalty.repository import tiers as repo
from loyalty.repository.base import Transaction, TransactionCancelled
from loyalty.repository.ranked_statuses import get_catalog
from loyalty.schemas.ranked_statuses import JobStep, StatusJob
from loyalty.schemas.tiers import TierEvaluation, TierEvaluationJob, TierEvaluationReport, TierMoveView
from loyalty.services.ranked_statuses.definitions import CatalogChange, change_catalog, job_view
from loyalty.services.tiers.moves import ladder_of, stage_outcome

PAGE = 500
STEP_RESERVE_MS = 60_000


def _ladder(catalog: CatalogRecord, business_id: str) -> Ladder:
    time_zone = (points_repo.get_settings(business_id) or {}).get("time_zone") or "UTC"
    ladder = ladder_of(catalog, str(time_zone))
    if ladder is None:
        raise Conflict("this business has no tier ladder; PUT /v1/tiers first")
    return ladder


def evaluate(principal: Principal, body: TierEvaluation) -> TierEvaluationReport | TierEvaluationJob:
    principal.require(ADMINS)
    bid = principal.business_id
    catalog = get_catalog(bid)
    ladder = _ladder(catalog, bid)
    if body.dry_run:
        return _dry_run(bid, catalog, ladder, body.limit)

    def mutate(current: CatalogRecord) -> CatalogChange:
        return CatalogChange(dict(current["definitions"]), job_kind="tiers")

    _, job = change_catalog(bid, principal.as_actor_record(), mutate)
    view = job_view(job)
    assert view is not None
    return TierEvaluationJob(job=view)


def _dry_run(bid: str, catalog: CatalogRecord, ladder: Ladder, limit: int) -> TierEvaluationReport:
    ranks = tiers.ranks_of(catalog["definitions"])
    now = now_iso()
    report = TierEvaluationReport(
        ladder_version=ladder.version,
        customers=0,
        upgrades=0,
        downgrades=0,
        unchanged=0,
        moves=[],
        moves_truncated=False,
    )
    for record in repo.all_members(bid):
        report.customers += 1
        outcome = tiers.evaluate(record, ladder, ranks, now, bool(record.get("holds", True)))
        moved = [e for e in outcome.events if e.move is not tiers.Move.RETAINED]
        if not moved:
            report.unchanged += 1
            continue
        event = moved[-1]
        if event.move is tiers.Move.UPGRADED:
            report.upgrades += 1
        else:
            report.downgrades += 1
        if len(report.moves) < limit:
            report.moves.append(
                TierMoveView(
                    customer_id=record["customer_id"],
                    from_code=event.from_code,
                    to_code=event.to_code,
                    move=event.move.value,
                    qualifying_value=event.qualifying_value,
                )
            )
        else:
            report.moves_truncated = True
    return report


def run_step(step: JobStep, time_left_ms: Callable[[], int]) -> None:
    """One invocation of a tier evaluation job: shards in turn, a page at a time; re-queued
    with its position when time runs short. A page run twice changes nothing more (each
    record is compared with the ladder, only differences are written)."""
    bid = step.business_id
    pages = 0
    while step.position < keys.TIER_SHARDS:
        if pages and time_left_ms() < STEP_RESERVE_MS:
            queues.run_status_job(step.model_dump())
            return
        pages += 1
        catalog = get_catalog(bid, consistent=True)
        ladder = _ladder(catalog, bid)
        page = repo.members_page(bid, step.position, PAGE, step.cursor)
        changed, failed = _apply(page.items, catalog, ladder)
        statuses_repo.record_progress(bid, step.job_id, len(page.items), changed, failed)
        if page.next_cursor:
            step.cursor = page.next_cursor
        else:
            step.position, step.cursor = step.position + 1, None
    statuses_repo.finish_job(bid, step.job_id)


def _apply(records: list[TierRecord], catalog: CatalogRecord, ladder: Ladder) -> tuple[int, int]:
    ranks = tiers.ranks_of(catalog["definitions"])
    now = now_iso()
    moving: dict[str, tiers.Outcome] = {}
    for record in records:
        outcome = tiers.evaluate(record, ladder, ranks, now, bool(record.get("holds", True)))
        if outcome.record.get("tier") != record.get("tier") or outcome.events:
            moving[record["customer_id"]] = outcome
    if not moving:
        return 0, 0
    bid = records[0]["business_id"]
    profiles = customers_repo.get_profiles(bid, list(moving))
    read = {r["customer_id"]: int(r.get("version") or 0) for r in records}
    changed = failed = 0
    for cid, outcome in moving.items():
        tx = Transaction()
        stage_outcome(tx, read[cid], outcome, profiles.get(cid), catalog["definitions"], TIERS_ACTOR, now)
        try:
            tx.commit()
            changed += 1
        except TransactionCancelled:
            failed += 1  # moved meanwhile (a purchase, the check): the job's next run decides again
    return changed, failed


def get_job(principal: Principal, job_id: str) -> StatusJob:
    principal.require(ADMINS)
    view = job_view(statuses_repo.get_jobs(principal.business_id, [job_id]).get(job_id))
    if view is None or view.kind != "tiers":
        raise NotFound("no such tier evaluation", {"job_id": job_id})
    return view
