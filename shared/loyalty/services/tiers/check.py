"""The scheduled retention check (`TierCheck`): customers whose tier retention or manual tier
has ended are retained, downgraded or recomputed, with `tier.retained` / `tier.downgraded`.

It reads only the tier records in the sparse due index (sharded), and decides from that copy
alone: the record carries the monthly totals and the profile's version and status order as
last seen. A customer whose tier code moves gets a profile update conditioned on that
version (no read); only if the profile changed since is it read and the move planned again.
Every write is conditioned on the record's version, so a check that runs twice, or overlaps a
purchase, moves nobody twice and loses no upgrade: the loser reads again next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loyalty.domain import ranked_statuses, tiers
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import VersionConflict
from loyalty.domain.lifecycle import AuditKind
from loyalty.domain.principal import TIERS_ACTOR
from loyalty.domain.records import CatalogRecord
from loyalty.domain.tiers import Ladder, Move, Outcome, TierRecord, ranks_of
from loyalty.observability import logger
from loyalty.repository import customers as customers_repo
from loyalty.repository import keys
from loyalty.repository import points as points_repo
from loyalty.repository import tiers as repo
from loyalty.repository.base import Transaction, TransactionCancelled
from loyalty.repository.customers import AuditEntry
from loyalty.repository.ranked_statuses import get_catalog
from loyalty.schemas.tiers import TierCheckReport
from loyalty.services.tiers.moves import ladder_of, stage_outcome

SAFETY_SECONDS = 20.0
PAGE = 200


@dataclass
class _Business:
    catalog: CatalogRecord
    ladder: Ladder | None
    ranks: dict[str, int] = field(default_factory=dict)


def run(time_left: Callable[[], float] | None = None, now: str | None = None) -> TierCheckReport:
    report = TierCheckReport()
    at = now or now_iso()
    businesses: dict[str, _Business] = {}
    for shard in range(keys.TIER_SHARDS):
        cursor: str | None = None
        while True:
            if time_left is not None and time_left() < SAFETY_SECONDS:
                report.out_of_time = True
                logger.warning("tier check stopped for time; the next run continues")
                return report
            page = repo.due_page(shard, at, PAGE, cursor)
            for record in page.items:
                report.checked += 1
                business = businesses.get(record["business_id"]) or _load(record["business_id"], businesses)
                try:
                    _check(record, business, at, report)
                except VersionConflict:
                    report.conflicts += 1  # a purchase or another run moved it first: next run decides
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    logger.info("tier check finished", extra=report.model_dump())
    return report


def _load(business_id: str, cache: dict[str, _Business]) -> _Business:
    catalog = get_catalog(business_id)
    time_zone = (points_repo.get_settings(business_id) or {}).get("time_zone") or "UTC"
    business = _Business(catalog, ladder_of(catalog, str(time_zone)), ranks_of(catalog["definitions"]))
    cache[business_id] = business
    return business


def _check(record: TierRecord, business: _Business, at: str, report: TierCheckReport) -> None:
    if business.ladder is None:
        report.skipped += 1  # no ladder any more: nothing to keep or lose until one is set again
        return
    outcome = tiers.at_check(record, business.ladder, business.ranks, at, bool(record.get("holds", True)))
    for event in outcome.events:
        if event.move is Move.RETAINED:
            report.retained += 1
        elif event.move is Move.DOWNGRADED:
            report.downgraded += 1
        else:
            report.upgraded += 1
    if not outcome.effective_changed:
        tx = Transaction()
        stored = repo.stage_events(tx, outcome.record, outcome.events, at, TIERS_ACTOR)
        repo.stage_record(tx, stored, int(record.get("version") or 0))
        _commit(tx)
        return
    if record.get("profile_version") and _moved_without_read(record, outcome, business, at):
        return
    report.profiles_read += 1
    _moved_after_read(record, outcome, business, at)


def _moved_without_read(record: TierRecord, outcome: Outcome, business: _Business, at: str) -> bool:
    before, after = _held(record, business), outcome.record.get("effective")
    order = [c for c in record.get("status_order") or [] if c != before]
    if after:
        order.append(after)
    order = ranked_statuses.status_order({c: {} for c in order}, business.catalog["definitions"])
    moved = [e for e in outcome.events if e.move is not Move.RETAINED]
    details = {"from_tier": before, "to_tier": after, "move": moved[-1].move.value, "cause": moved[-1].reason}
    status = record.get("program_status")
    entry = AuditEntry(AuditKind.TIER_CHANGED, TIERS_ACTOR, status, status, None, details)
    tx = Transaction()
    profile_at = repo.stage_profile_move(tx, record, before, after, order, entry, at)
    snapshot: TierRecord = {
        **outcome.record,
        "profile_version": int(record["profile_version"]) + 1,
        "status_order": order,
    }
    stored = repo.stage_events(tx, snapshot, outcome.events, at, TIERS_ACTOR)
    repo.stage_record(tx, stored, int(record.get("version") or 0))
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if profile_at in cancelled.failed_indexes():
            return False  # the profile changed since the record saw it: read it and plan again
        raise VersionConflict("the tier record changed meanwhile") from cancelled
    return True


def _held(record: TierRecord, business: _Business) -> str | None:
    """The tier code the profile held when the record last saw it."""
    held = record.get("effective")
    return held if held in (record.get("status_order") or []) else None


def _moved_after_read(record: TierRecord, outcome: Outcome, business: _Business, at: str) -> None:
    fresh = repo.get_record(record["business_id"], record["customer_id"], consistent=True)
    profile = customers_repo.get_profile(record["business_id"], record["customer_id"], consistent=True)
    if fresh is None or fresh.get("version") != record.get("version") or profile is None:
        raise VersionConflict("the tier record changed meanwhile")
    tx = Transaction()
    stage_outcome(
        tx,
        int(record.get("version") or 0),
        outcome,
        profile,
        business.catalog["definitions"],
        TIERS_ACTOR,
        at,
    )
    _commit(tx)


def _commit(tx: Transaction) -> None:
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        raise VersionConflict("the tier record or the profile changed meanwhile") from cancelled
