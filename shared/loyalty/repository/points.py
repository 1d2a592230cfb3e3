"""Wallets, ledger entries, points commands and settings (docs/design.md#points-ledger).

A command reads what it needs in one BatchGetItem (the profile, the wallet, the business's
points settings and status catalog, and the command's own record by external id) and
writes in one TransactWriteItems: the wallet under its sequence number, the new ledger
entries (each `attribute_not_exists`), the command's record (`attribute_not_exists` for a
new one, its version for a return or capture) and a check that the profile is still the
one read (or its change, when a tier moves).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from loyalty.adapters import aws
from loyalty.domain.points import Entry, Wallet, empty_wallet
from loyalty.domain.records import ActorRecord, CatalogRecord, ProfileRecord
from loyalty.domain.tiers import TierRecord
from loyalty.repository import customers as customer_repo
from loyalty.repository import keys
from loyalty.repository.base import (
    QueryPage,
    Transaction,
    TransactionCancelled,
    batch_get,
    get_item,
    query_all,
    query_prefix,
    serialize,
    table_name,
)
from loyalty.repository.ranked_statuses import catalog_of
from loyalty.repository.tiers import record_of

_INTERNAL = frozenset({"PK", "SK", "entity", "GSI3PK", "GSI3SK"})


class WalletMoved(Exception):
    """The wallet, the profile or the command's record changed since it was read: read again."""


class OpTaken(Exception):
    """Another request recorded a command with this external id first."""


@dataclass
class CommandState:
    """Everything a points command decides on, read in one request."""

    profile: ProfileRecord | None
    wallet: Wallet
    settings: dict[str, Any] | None
    catalog: CatalogRecord
    ops: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (kind, external id) -> record
    wallet_stored: bool = False
    tier: TierRecord | None = None  # monthly totals and tiers (docs/design.md#tiers)


def read_command(
    business_id: str, customer_id: str, ops: Iterable[tuple[str, str]] = (), *, with_catalog: bool = True
) -> CommandState:
    wanted_ops = list(dict.fromkeys(ops))
    request = [
        keys.customer_key(business_id, customer_id),
        keys.wallet_key(business_id, customer_id),
        keys.points_settings_key(business_id),
        keys.tier_key(business_id, customer_id),
        *([keys.status_catalog_key(business_id)] if with_catalog else []),
        *(keys.points_op_key(business_id, kind, ext) for kind, ext in wanted_ops),
    ]
    found = {(i["PK"], i["SK"]): i for i in batch_get(request, consistent=True)}

    def item(key: Mapping[str, str]) -> dict[str, Any] | None:
        return found.get((key["PK"], key["SK"]))

    profile = item(keys.customer_key(business_id, customer_id))
    wallet = item(keys.wallet_key(business_id, customer_id))
    catalog = item(keys.status_catalog_key(business_id))
    tier = item(keys.tier_key(business_id, customer_id))
    return CommandState(
        profile=customer_repo.strip_keys(profile) if profile else None,
        wallet=wallet_of(wallet) if wallet else empty_wallet(business_id, customer_id),
        settings=_strip(item(keys.points_settings_key(business_id))),
        catalog=catalog_of(catalog),
        ops={
            (kind, ext): _strip(op) or {}
            for kind, ext in wanted_ops
            if (op := item(keys.points_op_key(business_id, kind, ext))) is not None
        },
        wallet_stored=wallet is not None,
        tier=record_of(tier) if tier else None,
    )


def _strip(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in item.items() if k not in _INTERNAL} if item else None


def wallet_of(item: Mapping[str, Any]) -> Wallet:
    """A stored wallet item without its key and index attributes."""
    return cast(Wallet, _strip(item))


def get_wallet(business_id: str, customer_id: str, consistent: bool = False) -> Wallet | None:
    item = get_item(keys.wallet_key(business_id, customer_id), consistent=consistent)
    return wallet_of(item) if item else None


# --- writing -------------------------------------------------------------------------------------


def wallet_item(wallet: Wallet, due_at: str | None) -> dict[str, Any]:
    """The wallet with its place in the scheduled run's sparse due index (none when idle)."""
    bid, cid = wallet["business_id"], wallet["customer_id"]
    fields = {k: v for k, v in wallet.items() if k not in _INTERNAL}
    item: dict[str, Any] = {**fields, **keys.wallet_key(bid, cid), "entity": keys.ENTITY_WALLET}
    if due_at:
        item["GSI3PK"] = keys.points_due_pk(keys.shard_of(cid, keys.POINTS_DUE_SHARDS))
        item["GSI3SK"] = keys.points_due_sk(due_at, bid, cid)
    return item


def stage_wallet(tx: Transaction, wallet: Wallet, read_version: int, stored: bool, due_at: str | None) -> int:
    """Put the wallet if it is still at the version it was read at (new: if none exists)."""
    item = wallet_item(wallet, due_at)
    if not stored:
        return tx.put(item, "attribute_not_exists(PK)")
    return tx.put(item, "#v = :v", names={"#v": "version"}, values={":v": read_version})


def entry_item(
    wallet: Wallet, seq: int, entry: Entry, *, occurred_at: str, recorded_at: str, actor: ActorRecord
) -> dict[str, Any]:
    bid, cid = wallet["business_id"], wallet["customer_id"]
    return {
        **keys.ledger_key(bid, cid, seq),
        "entity": keys.ENTITY_LEDGER_ENTRY,
        "business_id": bid,
        "customer_id": cid,
        "entry_id": f"{seq:012d}",
        "seq": seq,
        "type": entry.type.value,
        "points": entry.points,
        "balance_after": entry.balance_after,
        "external_id": entry.external_id,
        "lots": entry.lots,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "actor": dict(actor),
        "details": entry.details,
    }


def stage_entries(tx: Transaction, items: Sequence[Mapping[str, Any]]) -> None:
    for item in items:
        tx.put(item, "attribute_not_exists(PK)")


def op_item(business_id: str, kind: str, external_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **keys.points_op_key(business_id, kind, external_id),
        "entity": keys.ENTITY_POINTS_OP,
        "business_id": business_id,
        "kind": kind,
        "external_id": external_id,
        **record,
    }


def stage_new_op(
    tx: Transaction, business_id: str, kind: str, external_id: str, record: Mapping[str, Any]
) -> int:
    return tx.put(
        op_item(business_id, kind, external_id, {**record, "version": 1}), "attribute_not_exists(PK)"
    )


def stage_op_update(
    tx: Transaction, business_id: str, kind: str, external_id: str, record: Mapping[str, Any]
) -> int:
    """Replace a command's record if it is still at the version read (a return, a capture)."""
    read = int(record.get("version") or 1)
    item = op_item(business_id, kind, external_id, {**record, "version": read + 1})
    return tx.put(item, "#v = :v", names={"#v": "version"}, values={":v": read})


def stage_profile_check(tx: Transaction, profile: ProfileRecord) -> int:
    """The customer is still as read (status, statuses): what the command decided on holds."""
    return tx.check(
        keys.customer_key(profile["business_id"], profile["customer_id"]),
        "#v = :v",
        names={"#v": "version"},
        values={":v": profile["version"]},
    )


def commit(tx: Transaction, op_indexes: Iterable[int] = ()) -> None:
    """Commit a command; a lost race says which kind (`OpTaken` or `WalletMoved`)."""
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        failed = set(cancelled.failed_indexes())
        if failed & set(op_indexes):
            raise OpTaken from cancelled
        if failed or cancelled.failed_indexes("TransactionConflict"):
            raise WalletMoved from cancelled
        raise


def notice_item(
    business_id: str, customer_id: str, notice_id: str, record: Mapping[str, Any], ttl: int
) -> dict:
    return {
        **keys.notice_key(business_id, customer_id, notice_id),
        "entity": keys.ENTITY_POINTS_NOTICE,
        "business_id": business_id,
        "customer_id": customer_id,
        **record,
        "ttl": ttl,
    }


# --- settings -----------------------------------------------------------------------------------------


def get_settings(business_id: str) -> dict[str, Any] | None:
    return _strip(get_item(keys.points_settings_key(business_id), consistent=True))


def put_settings(business_id: str, values: Mapping[str, Any], at: str) -> dict[str, Any]:
    item = {
        **keys.points_settings_key(business_id),
        "entity": keys.ENTITY_POINTS_SETTINGS,
        "business_id": business_id,
        **values,
        "updated_at": at,
    }
    # Last writer wins: settings are one document an admin replaces.
    aws.dynamodb().put_item(TableName=table_name(), Item=serialize(item))
    return dict(_strip(item) or {})


# --- reading --------------------------------------------------------------------------------------------


def ledger_page(
    business_id: str, customer_id: str, limit: int, cursor: str | None
) -> QueryPage[dict[str, Any]]:
    page = query_prefix(
        keys.customer_pk(business_id, customer_id), keys.LEDGER_SK_PREFIX, limit, cursor, forward=False
    )
    return QueryPage([_strip(i) or {} for i in page.items], page.next_cursor)


def due_wallets(now: str, page_size: int = 200) -> Iterator[Wallet]:
    """Wallets whose next piece of work is due at `now`, every shard, soonest first per shard.

    The key condition alone selects them (no filter): every item read is work.
    """
    bound = f"{now}$"  # "<due>#<business>#<customer>" for every due time <= now sorts below
    for shard in range(keys.POINTS_DUE_SHARDS):
        pk = keys.points_due_pk(shard)
        condition = "GSI3PK = :pk AND GSI3SK < :bound"
        items = query_all(
            condition, {":pk": pk, ":bound": bound}, index=keys.GSI3, limit=page_size, partition=pk
        )
        yield from (wallet_of(i) for i in items)


def purge_free_text(business_id: str, customer_id: str, op_keys: Iterable[Mapping[str, str]]) -> None:
    """Exclusion: a purchase's channel and a redemption's reward are the person's words."""
    for key in op_keys:
        aws.dynamodb().update_item(
            TableName=table_name(),
            Key=serialize(dict(key)),
            UpdateExpression="REMOVE channel, reward, answer",
            ConditionExpression="customer_id = :c",
            ExpressionAttributeValues={":c": {"S": customer_id}},
        )
