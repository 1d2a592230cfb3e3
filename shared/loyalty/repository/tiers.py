"""Tier records, tier events, and the two indexes over tier records (docs/design.md#tiers).

A customer's tier record is one small item in their partition (`TIER`): monthly totals, the
computed and manual tier, the effective code. It is written under its version in the same
transaction as whatever moved it (a purchase, the retention check, a manual tier, a job),
together with an immutable tier event (`TIEREVT#<seq>`, the webhook source) and, when the
effective tier changed, the profile. GSI1 lists a business's records (sharded) for
re-evaluation jobs; the sparse GSI2 lists records whose retention or manual tier ends, by
time, for the retention check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from loyalty.domain.records import ActorRecord, ProfileRecord
from loyalty.domain.tiers import TierEvent, TierRecord, due_at, empty_record
from loyalty.repository import customers as customers_repo
from loyalty.repository import keys
from loyalty.repository import ranked_statuses as statuses_repo
from loyalty.repository.base import QueryPage, Transaction, get_item, query, query_all
from loyalty.repository.customers import AuditEntry

_INTERNAL = frozenset({"PK", "SK", "entity", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"})


def record_of(item: Mapping[str, Any]) -> TierRecord:
    return cast(TierRecord, {k: v for k, v in item.items() if k not in _INTERNAL})


def get_record(business_id: str, customer_id: str, consistent: bool = False) -> TierRecord | None:
    item = get_item(keys.tier_key(business_id, customer_id), consistent=consistent)
    return record_of(item) if item else None


def or_empty(record: TierRecord | None, business_id: str, customer_id: str) -> TierRecord:
    return record if record is not None else empty_record(business_id, customer_id)


def tier_item(record: TierRecord) -> dict[str, Any]:
    bid, cid = record["business_id"], record["customer_id"]
    shard = keys.shard_of(cid, keys.TIER_SHARDS)
    item: dict[str, Any] = {
        **{k: v for k, v in record.items() if k not in _INTERNAL},
        **keys.tier_key(bid, cid),
        "entity": keys.ENTITY_TIER,
        "GSI1PK": keys.tier_members_pk(bid, shard),
        "GSI1SK": cid,
    }
    due = due_at(record)
    if due:
        item["GSI2PK"] = keys.tier_due_pk(shard)
        item["GSI2SK"] = keys.tier_due_sk(due, bid, cid)
    return item


def stage_record(tx: Transaction, record: TierRecord, read_version: int) -> TierRecord:
    """Put the record if it is still at the version it was read at (0: none was stored)."""
    stored = cast(TierRecord, {**record, "version": read_version + 1})
    item = tier_item(stored)
    if read_version == 0:
        tx.put(item, "attribute_not_exists(PK)")
    else:
        tx.put(item, "#v = :v", names={"#v": "version"}, values={":v": read_version})
    return stored


def stage_events(
    tx: Transaction, record: TierRecord, events: list[TierEvent], at: str, actor: ActorRecord
) -> TierRecord:
    """One immutable item per tier event (the stream turns each into a `tier.*` webhook)."""
    seq = int(record.get("seq") or 0)
    bid, cid = record["business_id"], record["customer_id"]
    for event in events:
        seq += 1
        tx.put(
            {
                **keys.tier_event_key(bid, cid, seq),
                "entity": keys.ENTITY_TIER_EVENT,
                "business_id": bid,
                "customer_id": cid,
                "move": event.move.value,
                "from_code": event.from_code,
                "to_code": event.to_code,
                "qualifying_value": str(event.qualifying_value),
                "retained_until": event.retained_until,
                "reason": event.reason,
                "at": at,
                "recorded_at": at,
                "actor": dict(actor),
            },
            "attribute_not_exists(PK)",
        )
    return cast(TierRecord, {**record, "seq": seq})


def due_page(shard: int, now: str, limit: int, cursor: str | None) -> QueryPage[TierRecord]:
    """Records whose retention or manual tier ended before `now`, soonest first (key only: every
    item read is work)."""
    pk = keys.tier_due_pk(shard)
    page = query(
        "GSI2PK = :pk AND GSI2SK < :bound",
        {":pk": pk, ":bound": f"{now}$"},
        index=keys.GSI2,
        limit=limit,
        cursor=cursor,
        partition=pk,
    )
    return QueryPage([record_of(i) for i in page.items], page.next_cursor)


def members_page(business_id: str, shard: int, limit: int, cursor: str | None) -> QueryPage[TierRecord]:
    pk = keys.tier_members_pk(business_id, shard)
    page = query("GSI1PK = :pk", {":pk": pk}, index=keys.GSI1, limit=limit, cursor=cursor, partition=pk)
    return QueryPage([record_of(i) for i in page.items], page.next_cursor)


def all_members(business_id: str, page_size: int = 1000) -> Iterator[TierRecord]:
    for shard in range(keys.TIER_SHARDS):
        pk = keys.tier_members_pk(business_id, shard)
        items = query_all("GSI1PK = :pk", {":pk": pk}, index=keys.GSI1, limit=page_size, partition=pk)
        yield from (record_of(i) for i in items)


def stage_profile_move(
    tx: Transaction,
    record: TierRecord,
    before_code: str | None,
    after_code: str | None,
    order: list[str],
    entry: AuditEntry,
    at: str,
) -> int:
    """Move the profile's tier status without reading the profile: an update conditioned on
    the version the record last saw, with that version's audit event and assignment items.
    A profile changed since fails the condition; the caller then reads it and plans again."""
    bid, cid = record["business_id"], record["customer_id"]
    seen = int(record["profile_version"])
    assignment = {"source": "tier", "assigned_by": entry.actor["sub"], "assigned_at": at}
    names = {
        "#v": "version",
        "#so": "status_order",
        "#bs": "best_status",
        "#u": "updated_at",
        "#lc": "last_change",
    }
    values: dict[str, Any] = {
        ":seen": seen,
        ":next": seen + 1,
        ":order": order,
        ":best": order[0] if order else None,
        ":at": at,
        ":lc": {"event": entry.event, "actor": dict(entry.actor), "at": at},
    }
    sets = ["#so = :order", "#bs = :best", "#v = :next", "#u = :at", "#lc = :lc"]
    removes: list[str] = []
    if after_code:
        names["#st"], names["#new"] = "statuses", after_code
        values[":a"] = assignment
        sets.append("#st.#new = :a")
    if before_code:
        names["#st"], names["#old"] = "statuses", before_code
        removes.append("#st.#old")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    index = tx.update(keys.customer_key(bid, cid), expression, "#v = :seen", names=names, values=values)
    moved = cast(ProfileRecord, {"business_id": bid, "customer_id": cid, "version": seen + 1})
    tx.put(customers_repo.audit_item(moved, entry, at), "attribute_not_exists(PK)")
    held = {
        "business_id": bid,
        "customer_id": cid,
        "statuses": {after_code: assignment} if after_code else {},
    }
    statuses_repo.stage_assignments(
        tx, held, [after_code] if after_code else [], [before_code] if before_code else []
    )
    return index
