"""Import reports, their row outcomes, and the batched customer writes of an import.

The report item is the checkpoint: `rows_done`/`offset` advance only under a condition
on the lease holder and the previous `rows_done`, so a duplicate or stale run can never
move it twice. Row outcomes are stored one item per chunk, in the checkpoint's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError

from loyalty.adapters import aws
from loyalty.domain.errors import Conflict
from loyalty.domain.records import ImportReportRecord
from loyalty.repository import customers, keys
from loyalty.repository.base import (
    MAX_TRANSACTION_ITEMS,
    ConditionFailed,
    Transaction,
    TransactionCancelled,
    batch_get,
    deserialize,
    get_item,
    serialize,
    serialize_value,
    table_name,
    translate,
)

Identifier = tuple[str, str]  # (kind, normalised value)


class LeaseLost(Exception):
    """Another run holds or took over the import; this run must stop writing."""


def get_report(business_id: str, import_id: str, consistent: bool = True) -> ImportReportRecord | None:
    return cast(
        ImportReportRecord | None, get_item(keys.import_key(business_id, import_id), consistent=consistent)
    )


def create_report(report: Mapping[str, Any]) -> bool:
    """Store a new report; False when one with this id exists already (a re-post)."""
    item = {
        **keys.import_key(report["business_id"], report["import_id"]),
        "entity": keys.ENTITY_IMPORT,
        **report,
    }
    tx = Transaction()
    tx.put_new(item)
    try:
        tx.commit()
    except TransactionCancelled:
        return False
    return True


def _update(
    sets: Mapping[str, Any],
    *,
    condition: str,
    condition_values: Mapping[str, Any],
    adds: Mapping[str, int] | None = None,
    removes: Sequence[str] = (),
    append_errors: list[dict[str, Any]] | None = None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """An UpdateExpression with every attribute name aliased (several are reserved words)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = dict(condition_values)

    def alias(attr: str) -> str:
        names[f"#{attr}"] = attr
        return f"#{attr}"

    parts = [f"{alias(k)} = :set_{k}" for k in sets]
    values.update({f":set_{k}": v for k, v in sets.items()})
    if append_errors:
        parts.append(
            f"{alias('errors')} = list_append(if_not_exists({alias('errors')}, :no_errors), :new_errors)"
        )
        values[":no_errors"] = []
        values[":new_errors"] = append_errors
    expression = "SET " + ", ".join(parts)
    if adds:
        expression += " ADD " + ", ".join(f"{alias(k)} :add_{k}" for k in adds)
        values.update({f":add_{k}": v for k, v in adds.items()})
    if removes:
        expression += " REMOVE " + ", ".join(alias(k) for k in removes)
    for word in ("state", "lease_owner", "lease_until", "rows_done"):
        if f"#{word}" in condition:
            names[f"#{word}"] = word
    return expression, names, values


_CLAIM_CONDITION = (
    "#state IN (:pending, :running, :resumable)"
    " AND (attribute_not_exists(#lease_until) OR #lease_until < :now)"
)
_FENCE_CONDITION = "#lease_owner = :owner AND #rows_done = :previous"


def claim(
    business_id: str,
    import_id: str,
    owner: str,
    lease_until: float,
    now: float,
    at: str,
    *,
    resume_failed: bool = False,
) -> dict[str, Any] | None:
    """Take the lease of a pending or running import (or an interrupted one, `resume_failed`);
    None when another run holds it or it ended."""
    expression, names, values = _update(
        {"lease_owner": owner, "lease_until": lease_until, "updated_at": at, "state": "running"},
        condition=_CLAIM_CONDITION,
        condition_values={
            ":pending": "pending",
            ":running": "running",
            ":resumable": "failed" if resume_failed else "running",
            ":now": now,
        },
    )
    try:
        out = aws.dynamodb().update_item(
            TableName=table_name(),
            Key=serialize(keys.import_key(business_id, import_id)),
            UpdateExpression=expression,
            ConditionExpression=_CLAIM_CONDITION,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: serialize_value(v) for k, v in values.items()},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        error = translate(exc)
        if isinstance(error, ConditionFailed):
            return None
        raise error from exc
    return deserialize(out["Attributes"])


@dataclass
class Checkpoint:
    """What one processed chunk adds to the report."""

    rows_done: int
    sets: dict[str, Any]
    counts: dict[str, int]
    new_errors: list[dict[str, Any]]
    outcome_item: dict[str, Any] | None = None
    release: bool = False


def save_checkpoint(business_id: str, import_id: str, owner: str, previous_rows: int, cp: Checkpoint) -> None:
    """Advance the report and store the chunk's row outcomes, in one transaction, fenced."""
    expression, names, values = _update(
        {**cp.sets, "rows_done": cp.rows_done},
        condition=_FENCE_CONDITION,
        condition_values={":owner": owner, ":previous": previous_rows},
        adds={k: v for k, v in cp.counts.items() if v},
        removes=("lease_owner", "lease_until") if cp.release else (),
        append_errors=cp.new_errors,
    )
    tx = Transaction()
    tx.update(
        keys.import_key(business_id, import_id),
        expression,
        _FENCE_CONDITION,
        names=names,
        values=values,
    )
    if cp.outcome_item:
        tx.put(
            {
                **keys.import_rows_key(business_id, import_id, cp.outcome_item["first_row"]),
                "entity": keys.ENTITY_IMPORT_ROWS,
                **cp.outcome_item,
            }
        )
    try:
        tx.commit()
    except TransactionCancelled as exc:
        raise LeaseLost(f"import {import_id} was taken over by another run") from exc


def release(business_id: str, import_id: str, owner: str) -> None:
    """Give the lease up early (after an error) so a retry can resume at once."""
    try:
        aws.dynamodb().update_item(
            TableName=table_name(),
            Key=serialize(keys.import_key(business_id, import_id)),
            UpdateExpression="REMOVE #lease_owner, #lease_until",
            ConditionExpression="#lease_owner = :owner",
            ExpressionAttributeNames={"#lease_owner": "lease_owner", "#lease_until": "lease_until"},
            ExpressionAttributeValues={":owner": serialize_value(owner)},
        )
    except ClientError as exc:
        error = translate(exc)
        if not isinstance(error, ConditionFailed):
            raise error from exc


# --- identifiers and customers, in batches --------------------------------------------


@dataclass
class IdentifierState:
    owners: dict[Identifier, str]  # identifier -> customer id holding it
    suppressed: set[Identifier]
    sources: dict[Identifier, str] = field(default_factory=dict)  # provenance of each owned one


def read_identifiers(business_id: str, identifiers: Iterable[Identifier]) -> IdentifierState:
    """Lookup and suppression items of every identifier, with BatchGetItem (100 keys a call)."""
    wanted = set(identifiers)
    by_lookup = {keys.lookup_key(business_id, k, v)["PK"]: (k, v) for k, v in wanted}
    by_hash = {keys.suppression_key_of(business_id, k, v)["PK"]: (k, v) for k, v in wanted}
    request = [{"PK": pk, "SK": keys.LOOKUP_SK} for pk in by_lookup]
    request += [{"PK": pk, "SK": keys.SUPPRESS_SK} for pk in by_hash]
    state = IdentifierState({}, set())
    for item in batch_get(request, consistent=True) if request else []:
        if item["SK"] == keys.LOOKUP_SK and item["PK"] in by_lookup:
            state.owners[by_lookup[item["PK"]]] = item["customer_id"]
            if item.get("source"):
                state.sources[by_lookup[item["PK"]]] = item["source"]
        elif item["SK"] == keys.SUPPRESS_SK and item["PK"] in by_hash:
            state.suppressed.add(by_hash[item["PK"]])
    return state


def commit_writes(writes: Sequence[customers.Write], at: str) -> list[Exception | None]:
    """Commit customer writes packed into transactions of up to 100 items.

    A whole write (profile, lookups, suppression checks, audit) always stays in one
    transaction. When a packed transaction is cancelled, its writes are retried one by
    one so a single conflicting row does not fail the others. Returns, per write, None or
    the domain error that refused it.
    """
    results: list[Exception | None] = [None] * len(writes)
    staged: list[tuple[int, Transaction]] = []
    for index, write in enumerate(writes):
        single = Transaction()
        customers.stage(single, write, at)
        staged.append((index, single))

    def one_by_one(batch: list[tuple[int, Transaction]]) -> None:
        for index, single in batch:
            try:
                single.commit()
            except TransactionCancelled as cancelled:
                cid = writes[index].after["customer_id"]
                results[index] = customers.explain_cancellation(single, cancelled, cid)
            except Conflict as conflict:
                results[index] = conflict

    def flush(batch: list[tuple[int, Transaction]]) -> None:
        if not batch:
            return
        if len(batch) == 1:
            one_by_one(batch)
            return
        packed = Transaction(items=[op for _, single in batch for op in single.items])
        try:
            packed.commit()
        except (TransactionCancelled, Conflict):
            one_by_one(batch)

    batch: list[tuple[int, Transaction]] = []
    size = 0
    for index, single in staged:
        if size + len(single.items) > MAX_TRANSACTION_ITEMS:
            flush(batch)
            batch, size = [], 0
        batch.append((index, single))
        size += len(single.items)
    flush(batch)
    return results
