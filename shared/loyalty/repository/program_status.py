"""Program-status changes and exclusion: the DynamoDB side of loyalty.services.program_status.

A status change is one TransactWriteItems: an UpdateItem on the profile conditioned on
`version = :v AND program_status IN (:sources)` plus the audit event Put at version v+1.
No read is needed when the caller names the version it saw (`expected_version`). When
the statuses the change may start from are several, the stored audit event names the
version it follows (`details.from_version`) instead of a guessed `from_status`; the
status at that version is the `to_status` of the audit event at that version (every
change writes exactly one audit event per version, in the change's own transaction), so
history reads fill `from_status` from it. When those statuses lead to the target by
different events (pending: invite from imported, re-invite from inactive), the event is
stored as the map `event_by_from` and resolved the same way: by history reads from the
filled `from_status`, by webhooks from the stream record's old image (see
`resolve_deferred` and loyalty.domain.webhooks.events).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from loyalty.adapters import aws
from loyalty.domain import erasure
from loyalty.domain.errors import Conflict
from loyalty.domain.lifecycle import AuditKind
from loyalty.domain.records import ActorRecord, ProfileRecord
from loyalty.repository import customers as repo
from loyalty.repository import keys
from loyalty.repository.base import (
    MAX_TRANSACTION_ITEMS,
    Transaction,
    TransactionCancelled,
    batch_get,
    query_all,
    serialize,
    table_name,
)


class ProfileMismatch(Exception):
    """The profile was not at the version/status the change was conditioned on.

    `current` is the stored profile returned by the failed condition (None: no such customer),
    so the caller can re-check the rule without another read.
    """

    def __init__(self, current: ProfileRecord | None) -> None:
        super().__init__("profile did not match the change's condition")
        self.current = current


@dataclass(frozen=True)
class StatusChange:
    business_id: str
    customer_id: str
    version: int  # the version the change applies to; the result is version + 1
    event_by_from: Mapping[str, str]  # status the change may start from -> the event it is then
    target: str
    actor: ActorRecord
    reason: str | None
    from_status: str | None  # None when several sources were possible (no read)
    at: str

    @property
    def event(self) -> str | None:
        """The event applied, or None while it depends on a status nobody read."""
        if self.from_status is not None:
            return self.event_by_from[self.from_status]
        events = set(self.event_by_from.values())
        return events.pop() if len(events) == 1 else None


def change_status(change: StatusChange) -> None:
    """One TransactWriteItems: conditional profile update + audit event. Raises ProfileMismatch."""
    tx = Transaction()
    bid, cid = change.business_id, change.customer_id
    sources = sorted(change.event_by_from) if change.from_status is None else [change.from_status]
    event = change.event
    last_change: dict[str, Any] = {"event": event, "actor": change.actor, "at": change.at}
    details: dict[str, Any] = {} if change.from_status else {"from_version": change.version}
    if event is None:
        last_change["event_by_from"] = details["event_by_from"] = dict(change.event_by_from)
    values: dict[str, Any] = {
        ":v": change.version,
        ":nv": change.version + 1,
        ":to": change.target,
        ":at": change.at,
        ":lc": last_change,
        ":g2": keys.program_status_pk(bid, change.target, cid),
    }
    values.update({f":s{i}": s for i, s in enumerate(sources)})
    condition = f"#v = :v AND #s IN ({', '.join(f':s{i}' for i in range(len(sources)))})"
    # A status edit never schedules invitations (the invitation route sends them and sets
    # `invite_due_at`): the customer leaves the due index, as invitation_rules.index_due_at
    # would decide for a pending/active/inactive profile without `invite_due_at`.
    update = (
        "SET #s = :to, #v = :nv, updated_at = :at, last_change = :lc, GSI2PK = :g2"
        " REMOVE GSI3PK, GSI3SK, invite_due_at"
    )
    tx.update(
        keys.customer_key(bid, cid),
        update,
        condition,
        names={"#v": "version", "#s": "program_status"},
        values=values,
    )
    kind = AuditKind(event) if event else None
    entry = repo.AuditEntry(kind, change.actor, change.from_status, change.target, change.reason, details)
    tx.put(
        repo.audit_item(
            {"business_id": bid, "customer_id": cid, "version": change.version + 1}, entry, change.at
        ),
        "attribute_not_exists(PK)",
    )
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if cancelled.reasons and cancelled.reasons[0] == "ConditionalCheckFailed":
            stored = cancelled.items[0] if cancelled.items else None
            raise ProfileMismatch(cast(ProfileRecord | None, stored)) from cancelled
        # The profile held but the audit slot was taken: a writer bypassed the version rule.
        raise repo.explain_cancellation(tx, cancelled, cid) from cancelled


def resolve_deferred(business_id: str, customer_id: str, events: list[dict[str, Any]]) -> None:
    """Fill `from_status` (and a deferred `event`) of changes written without a read.

    The status a change started from is the `to_status` of the event at `from_version`.
    """
    wanted = {
        e["details"]["from_version"]: e
        for e in events
        if e.get("from_status") is None and isinstance((e.get("details") or {}).get("from_version"), int)
    }
    if not wanted:
        return
    by_version = {e["version"]: e for e in events}
    missing = [v for v in wanted if v not in by_version]
    if missing:
        found = batch_get([keys.event_key(business_id, customer_id, v) for v in missing], consistent=True)
        by_version.update({e["version"]: e for e in found})
    for version, event in wanted.items():
        previous = by_version.get(version)
        if previous is not None:
            event["from_status"] = previous.get("to_status")
            by_from = event["details"].get("event_by_from")
            if event.get("event") is None and isinstance(by_from, dict):
                event["event"] = by_from.get(event["from_status"])


# --- exclusion --------------------------------------------------------------------------


def read_customer_partition(business_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The profile with its card links, status assignments and history: one consistent Query.

    Exclusion needs all of them (what to delete, and the reasons to scrub), so one Query
    serves both; history sorts last (`Z#EVT#`), so the profile items come first.
    """
    pk = keys.customer_pk(business_id, customer_id)
    return list(query_all("PK = :pk", {":pk": pk}, consistent=True))


@dataclass
class Exclusion:
    profile: ProfileRecord  # as read
    after: ProfileRecord
    entry: repo.AuditEntry
    assignment_skus: list[str]  # SKs of status assignment items in the customer's partition
    at: str
    # Other writes of the same erasure (the points forfeit), staged with the profile's.
    extra: Callable[[Transaction], None] | None = None


def _suppression_puts(profile: ProfileRecord, at: str) -> Callable[[Transaction], None]:
    bid = profile["business_id"]

    def add(tx: Transaction) -> None:
        for kind in erasure.SUPPRESSED_IDENTIFIERS:
            value = profile.get(kind)
            if value:
                # Unconditional: a second exclusion of the same identifier keeps one hash.
                tx.put(
                    {
                        **keys.suppression_key_of(bid, kind, value),
                        "entity": keys.ENTITY_SUPPRESSION,
                        "business_id": bid,
                        "kind": kind,
                        "at": at,
                    }
                )

    return add


def _detach_ops(exclusion: Exclusion) -> list[Callable[[Transaction], None]]:
    """Idempotent steps: delete cards and status assignments."""
    profile = exclusion.profile
    bid, cid = profile["business_id"], profile["customer_id"]
    pk = keys.customer_pk(bid, cid)
    ops: list[Callable[[Transaction], None]] = []
    for card in profile.get("cards") or []:
        if card.get("state") == "deleted":
            continue

        def card_op(tx: Transaction, number: str = card["number"]) -> None:
            # Only a card this customer still owns; repeating it is harmless.
            tx.update(
                keys.card_key(bid, number),
                # The version bump makes a concurrent version-conditioned card write fail.
                "SET #s = :d, deleted_at = :at, #v = if_not_exists(#v, :zero) + :one",
                "customer_id = :c",
                names={"#s": "state", "#v": "version"},
                values={":d": "deleted", ":at": exclusion.at, ":c": cid, ":zero": 0, ":one": 1},
            )

        ops.append(card_op)
    for sk in exclusion.assignment_skus:

        def status_op(tx: Transaction, sk: str = sk) -> None:
            tx.delete({"PK": pk, "SK": sk})

        ops.append(status_op)
    return ops


def commit_exclusion(exclusion: Exclusion) -> ProfileRecord:
    """Erase and exclude in one transaction when it fits in 100 items, else detach first.

    The chunked path runs the idempotent detach steps in earlier transactions and the
    profile change (version condition, lookups, suppression, audit) last, so a failure
    part-way leaves a customer who is not yet excluded and a retry that completes it.
    Raises VersionConflict (or another domain error) when the profile changed.
    """
    profile = exclusion.profile
    ops = _detach_ops(exclusion)
    suppress = _suppression_puts(profile, exclusion.at)
    write = repo.Write(
        after=exclusion.after,
        before=profile,
        entry=exclusion.entry,
        identifiers=erasure.ERASED_IDENTIFIERS,
        extra=exclusion.extra,
    )
    final = Transaction()
    stored = repo.stage(final, write, exclusion.at)
    suppress(final)
    room = MAX_TRANSACTION_ITEMS - len(final.items)
    if len(ops) <= room:
        for op in ops:
            op(final)
    else:
        for start in range(0, len(ops), MAX_TRANSACTION_ITEMS):
            chunk = Transaction()
            for op in ops[start : start + MAX_TRANSACTION_ITEMS]:
                op(chunk)
            try:
                chunk.commit()
            except TransactionCancelled as cancelled:
                raise Conflict(
                    "a card or status of this customer changed during exclusion; retry",
                    {"reasons": sorted(set(cancelled.reasons) - {"None"})},
                ) from cancelled
    try:
        final.commit()
    except TransactionCancelled as cancelled:
        raise repo.explain_cancellation(final, cancelled, profile["customer_id"]) from cancelled
    return stored


def scrub_history_reasons(items: Iterable[dict[str, Any]]) -> int:
    """Erase the free-text reason of every earlier audit event (among `items`); codes stay.

    Every reason, not only those quoting a stored value: staff notes can name the person in
    ways no match finds (a phone typed differently, a social handle).
    """
    scrubbed = 0
    for event in items:
        if not event["SK"].startswith(keys.EVENT_SK_PREFIX):
            continue
        reason = event.get("reason")
        if isinstance(reason, str) and reason != erasure.ERASED_REASON:
            aws.dynamodb().update_item(
                TableName=table_name(),
                Key=serialize({"PK": event["PK"], "SK": event["SK"]}),
                UpdateExpression="SET reason = :r",
                ExpressionAttributeValues={":r": {"S": erasure.ERASED_REASON}},
            )
            scrubbed += 1
    return scrubbed
