"""The business's ranked-status catalog, assignment items and status jobs.

All of a business's definitions live in one versioned item: re-ranking is a single
conditional write (atomic, rank uniqueness by construction) and a profile read resolves
names and ranks with one GetItem. Each assignment also has an item in the customer's
partition, indexed by GSI1 (holders of a code) and, when it expires, by the sparse GSI2
partitions `STATUS#EXPIRY#<shard>` (the expiry schedule's work list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from loyalty.adapters import aws
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import DomainError, VersionConflict
from loyalty.domain.records import ActorRecord, CatalogRecord, ProfileRecord, StatusJobRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository import keys
from loyalty.repository.base import (
    QueryPage,
    Transaction,
    TransactionCancelled,
    batch_get,
    get_item,
    table_name,
    walk_shards,
)

MAX_RECENT_JOBS = 10


# --- the catalog -------------------------------------------------------------------------


def empty_catalog() -> CatalogRecord:
    return {"definitions": {}, "version": 0, "jobs": [], "deleting": [], "tiers": None}


def catalog_of(item: Mapping[str, Any] | None) -> CatalogRecord:
    """A stored catalog item as a record (an empty catalog, version 0, when none is stored)."""
    if not item:
        return empty_catalog()
    return {
        "definitions": item.get("definitions", {}),
        "version": item.get("version", 0),
        "jobs": item.get("jobs", []),
        "deleting": item.get("deleting", []),
        "tiers": item.get("tiers"),
    }


def get_catalog(business_id: str, consistent: bool = False) -> CatalogRecord:
    """`{"definitions": {code: {...}}, "version": n, "jobs": [...], "deleting": [...]}`.

    An empty catalog (version 0) when none is stored.
    """
    return catalog_of(get_item(keys.status_catalog_key(business_id), consistent=consistent))


def save_catalog(business_id: str, catalog: Mapping[str, Any], job: Mapping[str, Any] | None = None) -> int:
    """Write the catalog if nobody changed it since `catalog["version"]`; returns the new version.

    The job item (when given) is written in the same transaction, so a definition change
    and the background work it needs are recorded together or not at all.
    """
    expected = int(catalog["version"])
    item = {
        **keys.status_catalog_key(business_id),
        "entity": keys.ENTITY_STATUS_CATALOG,
        "business_id": business_id,
        "definitions": dict(catalog["definitions"]),
        "version": expected + 1,
        "jobs": list(catalog.get("jobs", []))[-MAX_RECENT_JOBS:],
        "deleting": list(catalog.get("deleting", [])),
        "tiers": catalog.get("tiers"),
        "updated_at": now_iso(),
    }
    tx = Transaction()
    if expected == 0:
        tx.put(item, "attribute_not_exists(PK)")
    else:
        tx.put(item, "#v = :v", names={"#v": "version"}, values={":v": expected})
    if job is not None:
        tx.put_new(
            {**job, **keys.status_job_key(business_id, job["job_id"]), "entity": keys.ENTITY_STATUS_JOB}
        )
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if 0 in cancelled.failed_indexes():
            raise VersionConflict("the status catalog changed meanwhile; retry") from cancelled
        raise
    return expected + 1


# --- assignment items --------------------------------------------------------------------


def assignment_item(business_id: str, customer_id: str, code: str, assignment: Mapping[str, Any]) -> dict:
    item: dict[str, Any] = {
        "PK": keys.customer_pk(business_id, customer_id),
        "SK": keys.status_assignment_sk(code),
        "entity": keys.ENTITY_STATUS_ASSIGNMENT,
        "business_id": business_id,
        "customer_id": customer_id,
        "code": code,
        **{k: v for k, v in assignment.items() if v is not None},
        "GSI1PK": keys.status_holder_pk(business_id, code, customer_id),
        "GSI1SK": customer_id,
    }
    expires_at = assignment.get("expires_at")
    if expires_at:
        item["GSI2PK"] = keys.status_expiry_pk(customer_id)
        item["GSI2SK"] = keys.status_expiry_sk(str(expires_at), business_id, customer_id, code)
    return item


def stage_assignments(
    tx: Transaction, profile: Mapping[str, Any], put: Iterable[str], delete: Iterable[str]
) -> None:
    """Assignment items matching `profile["statuses"]` for the codes that changed.

    Unconditional: the profile's version condition in the same transaction already
    serialises every change of this customer's statuses.
    """
    bid, cid = profile["business_id"], profile["customer_id"]
    assigned = profile.get("statuses") or {}
    for code in put:
        tx.put(assignment_item(bid, cid, code, assigned[code]))
    for code in delete:
        tx.delete({"PK": keys.customer_pk(bid, cid), "SK": keys.status_assignment_sk(code)})


def holders_page(business_id: str, code: str, limit: int, cursor: str | None) -> QueryPage[dict[str, Any]]:
    return customers_repo.list_status_holders(business_id, code, limit, cursor)


def profiles_page(
    business_id: str, program_status: str, limit: int, cursor: str | None
) -> QueryPage[ProfileRecord]:
    """Whole profiles (GSI2 projects every attribute), the status's shards merged."""
    return customers_repo.list_by_program_status(business_id, program_status, limit, cursor)


def expired_page(now: str, limit: int, cursor: str | None) -> QueryPage[dict[str, Any]]:
    """Assignment items whose expires_at is before `now`, across businesses: one shard after
    another, oldest first in each (a work list: every item read is due)."""
    return walk_shards(
        keys.status_expiry_pks(),
        "GSI2PK = :pk AND GSI2SK < :now",
        {":now": now},
        index=keys.GSI2,
        limit=limit,
        cursor=cursor,
        list_id="STATUS#EXPIRY",
    )


def find_by_emails(business_id: str, emails: Sequence[str]) -> dict[str, str]:
    """Normalised e-mail -> customer id, for those that belong to a customer (batch reads)."""
    found = batch_get([keys.lookup_key(business_id, "email", e) for e in emails])
    prefix = keys.lookup_key(business_id, "email", "")["PK"]
    return {item["PK"].removeprefix(prefix): item["customer_id"] for item in found}


# --- several customers per transaction ---------------------------------------------------


@dataclass
class GroupResult:
    committed: list[ProfileRecord] = field(default_factory=list)  # stored profiles
    conflicts: list[str] = field(default_factory=list)  # customer ids whose version moved
    failed: dict[str, str] = field(default_factory=dict)  # customer id -> reason


def commit_group(writes: Sequence[customers_repo.Write]) -> GroupResult:
    """Commit customer writes, packing several customers into each TransactWriteItems.

    A cancelled group is retried one customer at a time, so one customer's conflict
    never blocks the others; a conflict is reported for the caller to re-read and retry.
    """
    result = GroupResult()
    staged: list[tuple[customers_repo.Write, Transaction, ProfileRecord]] = []
    for write in writes:
        tx = Transaction()
        staged.append((write, tx, customers_repo.stage(tx, write)))
    group: list[tuple[customers_repo.Write, Transaction, ProfileRecord]] = []
    size = 0
    for entry in staged:
        if size + len(entry[1].items) > 100 and group:
            _commit_packed(group, result)
            group, size = [], 0
        group.append(entry)
        size += len(entry[1].items)
    if group:
        _commit_packed(group, result)
    return result


def _commit_packed(
    group: list[tuple[customers_repo.Write, Transaction, ProfileRecord]], result: GroupResult
) -> None:
    packed = Transaction()
    for _, tx, _ in group:
        packed.items.extend(tx.items)
    try:
        packed.commit()
    except TransactionCancelled:
        if len(group) > 1:
            for entry in group:
                _commit_packed([entry], result)
            return
        _, tx, profile = group[0]
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            error = customers_repo.explain_cancellation(tx, cancelled, profile["customer_id"])
            if isinstance(error, VersionConflict):
                result.conflicts.append(profile["customer_id"])
            else:
                result.failed[profile["customer_id"]] = (
                    error.message if isinstance(error, DomainError) else str(error)
                )
            return
    result.committed.extend(profile for _, _, profile in group)


# --- jobs --------------------------------------------------------------------------------


def job_item(
    business_id: str, job_id: str, kind: str, codes: Sequence[str], actor: ActorRecord
) -> StatusJobRecord:
    at = now_iso()
    job: StatusJobRecord = {
        "business_id": business_id,
        "job_id": job_id,
        "kind": kind,
        "codes": list(codes),
        "state": "queued",
        "processed": 0,
        "changed": 0,
        "failed": 0,
        "actor": actor,
        "created_at": at,
        "updated_at": at,
    }
    return job


def get_jobs(business_id: str, job_ids: Sequence[str]) -> dict[str, StatusJobRecord]:
    found = batch_get([keys.status_job_key(business_id, j) for j in job_ids])
    return {j["job_id"]: cast(StatusJobRecord, j) for j in found}


def record_progress(
    business_id: str, job_id: str, processed: int, changed: int, failed: int, state: str = "running"
) -> None:
    """Add one page's counts; counters are additive so pages never overwrite each other."""
    aws.dynamodb().update_item(
        TableName=table_name(),
        Key=_serialized_key(keys.status_job_key(business_id, job_id)),
        UpdateExpression="ADD #p :p, #c :c, #f :f SET #s = :s, #u = :t",
        # Several of these names are DynamoDB reserved words.
        ExpressionAttributeNames={
            "#p": "processed",
            "#c": "changed",
            "#f": "failed",
            "#s": "state",
            "#u": "updated_at",
        },
        ExpressionAttributeValues={
            ":p": {"N": str(processed)},
            ":c": {"N": str(changed)},
            ":f": {"N": str(failed)},
            ":s": {"S": state},
            ":t": {"S": now_iso()},
        },
    )


def finish_job(business_id: str, job_id: str, state: str = "completed", error: str | None = None) -> None:
    at = now_iso()
    values: dict[str, Any] = {":s": {"S": state}, ":t": {"S": at}}
    update = "SET #s = :s, updated_at = :t, finished_at = :t"
    if error:
        update += ", #e = :e"
        values[":e"] = {"S": error}
    aws.dynamodb().update_item(
        TableName=table_name(),
        Key=_serialized_key(keys.status_job_key(business_id, job_id)),
        UpdateExpression=update,
        ExpressionAttributeNames={"#s": "state", **({"#e": "error"} if error else {})},
        ExpressionAttributeValues=values,
    )


def _serialized_key(key: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}
