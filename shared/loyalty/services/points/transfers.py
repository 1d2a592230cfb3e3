"""Points that move with a customer: merges (a packed card's temporary owner into the real
customer, inside registration, attach and replacement) and exclusion (the balance is
forfeited). Each stages its writes into the caller's transaction, so the move happens with
the merge or the erasure or not at all."""

from __future__ import annotations

from decimal import Decimal

from loyalty.domain import points
from loyalty.domain.points import Policy, Wallet
from loyalty.domain.records import ActorRecord
from loyalty.repository import keys
from loyalty.repository import points as repo
from loyalty.repository import tiers as tiers_repo
from loyalty.repository.base import Transaction, batch_get


def read_wallets(business_id: str, customer_ids: list[str]) -> dict[str, Wallet]:
    """The stored wallets of these customers (consistent; absent ones are missing)."""
    found = batch_get([keys.wallet_key(business_id, c) for c in customer_ids], consistent=True)
    return {w["customer_id"]: repo.wallet_of(w) for w in found}


def stage_change(
    tx: Transaction,
    before: Wallet | None,
    change: points.Change,
    now: str,
    actor: ActorRecord,
    policy: Policy,
) -> None:
    wallet = change.wallet
    first = int((before or {}).get("seq") or 0) + 1
    repo.stage_wallet(
        tx,
        wallet,
        int((before or {}).get("version") or 0),
        before is not None,
        points.next_due(wallet, policy),
    )
    repo.stage_entries(
        tx,
        [
            repo.entry_item(wallet, first + i, e, occurred_at=now, recorded_at=now, actor=actor)
            for i, e in enumerate(change.entries)
        ],
    )


def _stage_tier_months(tx: Transaction, business_id: str, source_id: str, target_id: str) -> None:
    """The card's purchases count toward the real customer's tier: the monthly totals move
    (any upgrade they allow happens at the customer's next purchase or a re-evaluation job)."""
    found = batch_get([keys.tier_key(business_id, c) for c in (source_id, target_id)], consistent=True)
    records = {r["customer_id"]: tiers_repo.record_of(r) for r in found}
    source = records.get(source_id)
    if source is None or not source.get("months"):
        return
    target = tiers_repo.or_empty(records.get(target_id), business_id, target_id)
    months = {k: dict(v) for k, v in (target.get("months") or {}).items()}
    for month, totals in (source.get("months") or {}).items():
        into = months.setdefault(month, {"spend": "0", "points": 0})
        into["spend"] = str(Decimal(str(into["spend"])) + Decimal(str(totals.get("spend") or 0)))
        into["points"] = int(into["points"]) + int(totals.get("points") or 0)
    tiers_repo.stage_record(tx, {**target, "months": months}, int(target.get("version") or 0))
    # The merged owner is read-only from now on: its record leaves the tier indexes.
    tx.delete(
        keys.tier_key(business_id, source_id),
        "#v = :v",
        names={"#v": "version"},
        values={":v": source.get("version")},
    )


def stage_merge(
    tx: Transaction, business_id: str, source_id: str, target_id: str, now: str, actor: ActorRecord
) -> int:
    """Move the temporary owner's lots and debt (and tier totals) to the real customer; the
    points moved."""
    wallets = read_wallets(business_id, [source_id, target_id])
    source = wallets.get(source_id)
    if source is None:
        return 0  # the card never earned: nothing to move
    _stage_tier_months(tx, business_id, source_id, target_id)
    policy = Policy.of(repo.get_settings(business_id))
    target = wallets.get(target_id)
    into, out = points.merge(target or points.empty_wallet(business_id, target_id), source, now)
    stage_change(tx, target, into, now, actor, policy)
    stage_change(tx, source, out, now, actor, policy)
    return sum(e.points for e in into.entries if e.type is points.EntryType.MERGE_IN)


def stage_forfeit(tx: Transaction, wallet: Wallet | None, now: str, actor: ActorRecord) -> int:
    """Exclusion: the balance goes with a `forfeit` entry; the wallet leaves the due index."""
    if wallet is None:
        return 0
    change = points.forfeit(wallet, now)
    stage_change(tx, wallet, change, now, actor, Policy())
    return -sum(e.points for e in change.entries)
