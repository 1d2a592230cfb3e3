"""Customer profiles, their uniqueness lookups and their audit trail.

The profile item carries the whole customer view (cards and status codes are
denormalised onto it in the same transaction that changes them), so reading a profile
is one GetItem. Every change is one TransactWriteItems: the profile under a version
condition, lookup items under existence conditions, and the audit event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from loyalty.domain.clock import now_iso
from loyalty.domain.errors import Conflict, DomainError, Duplicate, NotFound, VersionConflict
from loyalty.domain.invitations import index_due_at
from loyalty.domain.lifecycle import AuditKind, eligibility
from loyalty.domain.records import PERSON_IDENTIFIERS, ActorRecord, IdentifierKind, ProfileRecord
from loyalty.domain.search import indexed_words, name_words
from loyalty.repository import keys
from loyalty.repository.base import (
    ConditionFailed,
    QueryPage,
    Transaction,
    TransactionCancelled,
    batch_get,
    get_item,
    merged_query,
    query,
    query_prefix,
)

IDENTIFIERS = PERSON_IDENTIFIERS
_INTERNAL = frozenset({"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "entity"})


class Suppressed(Conflict):
    code = "suppressed"


def with_index_keys(profile: ProfileRecord) -> dict[str, Any]:
    """Return the profile with its key and (sparse) GSI attributes derived from its fields.

    The profile is in no name index: its words are items of their own (`name_word_items`),
    written only when the name changes, so other profile writes never touch that index.
    """
    bid, cid, status = profile["business_id"], profile["customer_id"], profile["program_status"]
    item = {k: v for k, v in profile.items() if k not in _INTERNAL}
    item.update(keys.customer_key(bid, cid), entity=keys.ENTITY_CUSTOMER)
    item["GSI2PK"] = keys.program_status_pk(bid, status, cid)
    item["GSI2SK"] = keys.program_status_sk(profile["created_at"], cid)
    # GSI3 (invitation due): loyalty.domain.invitations decides who is due, and since when.
    due = index_due_at(profile)
    if due:
        item["GSI3PK"] = keys.invite_due_pk(bid, cid)
        item["GSI3SK"] = keys.invite_due_sk(due, cid)
    return item


def searchable_words(profile: ProfileRecord | None) -> list[str]:
    """The name's words as search sees them; none for a profile that is not listed
    (eligibility `listed`: only profiles with something personal to find)."""
    if profile is None or not eligibility(profile["program_status"]).listed:
        return []
    return name_words(profile.get("first_name"), profile.get("last_name"))


def name_word_item(profile: ProfileRecord, word: str, words: list[str]) -> dict[str, Any]:
    bid, cid = profile["business_id"], profile["customer_id"]
    return {
        **keys.name_word_key(bid, cid, word),
        "entity": keys.ENTITY_NAME_WORD,
        "business_id": bid,
        "customer_id": cid,
        "word": word,
        # The whole name: a query of several words is checked against it from the index alone.
        "words": words,
        "GSI1PK": keys.name_index_pk(bid, word),
        "GSI1SK": keys.name_index_sk(word, words, cid),
    }


def stage_name_words(tx: Transaction, before: ProfileRecord | None, after: ProfileRecord) -> None:
    """Name index entries follow the name: written when its words (or listing) change, else
    not at all. Each entry's sort key holds the whole name, so a change rewrites them all."""
    old, new = searchable_words(before), searchable_words(after)
    if old == new:
        return
    bid, cid = after["business_id"], after["customer_id"]
    kept = indexed_words(new)
    for word in set(indexed_words(old)) - set(kept):
        tx.delete(keys.name_word_key(bid, cid, word))
    for word in kept:
        tx.put(name_word_item(after, word, new))


def strip_keys(item: Mapping[str, Any]) -> ProfileRecord:
    """A profile item without its key and index attributes."""
    return cast(ProfileRecord, {k: v for k, v in item.items() if k not in _INTERNAL})


@dataclass
class AuditEntry:
    event: AuditKind | None  # None: decided by the status it started from (program_status.resolve_deferred)
    actor: ActorRecord
    from_status: str | None
    to_status: str | None
    reason: str | None = None
    # Never personal data: field names changed, card numbers, status codes, counts.
    details: dict[str, Any] = field(default_factory=dict)


def audit_item(profile: ProfileRecord, entry: AuditEntry, at: str) -> dict[str, Any]:
    bid, cid, version = profile["business_id"], profile["customer_id"], profile["version"]
    return {
        **keys.event_key(bid, cid, version),
        "entity": keys.ENTITY_EVENT,
        "business_id": bid,
        "customer_id": cid,
        "version": version,
        "event": entry.event,
        "from_status": entry.from_status,
        "to_status": entry.to_status,
        "actor": entry.actor,
        "reason": entry.reason,
        "at": at,
        "details": entry.details,
    }


def lookup_item(profile: ProfileRecord, kind: IdentifierKind) -> dict[str, Any]:
    return {
        **keys.lookup_key(profile["business_id"], kind, profile[kind]),
        "entity": keys.ENTITY_LOOKUP,
        "kind": kind,
        "customer_id": profile["customer_id"],
        # Provenance, read by imports: they never match an identifier a customer only declared.
        "source": (profile.get("identifier_sources") or {}).get(kind),
    }


@dataclass(frozen=True)
class Guard:
    """A rule the profile write must hold besides its version, checked by DynamoDB itself.

    `condition` is ANDed with the version condition; when the version matched but the
    condition did not, `refused` turns the stored profile into the error the caller sees.
    """

    condition: str
    values: Mapping[str, Any]
    refused: Callable[[ProfileRecord], DomainError]


@dataclass
class Write:
    """One customer change: `before` is None for a create. Committed as one transaction."""

    after: ProfileRecord
    entry: AuditEntry
    before: ProfileRecord | None = None
    # Extra items of the same unit of work (cards, other customers, status assignments).
    extra: Callable[[Transaction], None] | None = None
    check_suppression: bool = False
    identifiers: Iterable[IdentifierKind] = IDENTIFIERS
    # Identifiers whose owner proved them (or staff vouched): their suppression is lifted,
    # not checked. Only staff or the verified person may lift one (docs/design.md#trust-and-identity).
    lifted: frozenset[str] = frozenset()
    # An invariant of the change beyond the version (e.g. the invitation cadence); updates only.
    guard: Guard | None = None


def stage(tx: Transaction, write: Write, at: str | None = None) -> ProfileRecord:
    """Add `write` to `tx`; return the stored profile (version bumped, timestamps set)."""
    at = at or now_iso()
    before = write.before
    profile = write.after.copy()
    profile["version"] = (before["version"] + 1) if before else 1
    profile["updated_at"] = at
    profile.setdefault("created_at", at)
    bid, cid = profile["business_id"], profile["customer_id"]
    profile["last_change"] = {"event": write.entry.event, "actor": write.entry.actor, "at": at}

    item = with_index_keys(profile)
    if before is None:
        tx.put(item, "attribute_not_exists(PK)")
    elif write.guard is None:
        tx.put(item, "#v = :v", names={"#v": "version"}, values={":v": before["version"]})
    else:
        tx.put(
            item,
            f"#v = :v AND ({write.guard.condition})",
            names={"#v": "version"},
            values={":v": before["version"], **write.guard.values},
        )
    for kind in write.identifiers:
        old = before.get(kind) if before else None
        new = profile.get(kind)
        if old == new:
            continue
        if old:
            tx.delete(
                keys.lookup_key(bid, kind, old),
                "customer_id = :c",
                values={":c": cid},
            )
        if new:
            tx.put(lookup_item(profile, kind), "attribute_not_exists(PK)")
            if kind in write.lifted:
                tx.delete(keys.suppression_key_of(bid, kind, new))
            elif write.check_suppression:
                tx.check(keys.suppression_key_of(bid, kind, new), "attribute_not_exists(PK)")
    stage_name_words(tx, before, profile)
    tx.put(audit_item(profile, write.entry, at), "attribute_not_exists(PK)")
    if write.extra:
        write.extra(tx)
    return profile


def explain_cancellation(
    tx: Transaction, cancelled: TransactionCancelled, customer_id: str | None
) -> Exception:
    """Turn cancellation reasons into the domain error the caller should see."""
    for index in cancelled.failed_indexes():
        op = tx.items[index]
        key = next(iter(op.values())).get("Key") or next(iter(op.values())).get("Item", {})
        sk = key.get("SK", {}).get("S")
        pk = key.get("PK", {}).get("S", "")
        old = cancelled.items[index] if index < len(cancelled.items) else None
        if sk == keys.LOOKUP_SK and "Put" in op:
            kind = op["Put"]["Item"]["kind"]["S"]
            existing = (old or {}).get("customer_id")
            return Duplicate(
                f"another customer already has this {kind}",
                {"field": kind, "customer_id": existing},
            )
        if sk == keys.SUPPRESS_SK:
            return Suppressed(
                "this person asked to be excluded; only they can register again",
                {"field": "identifiers"},
            )
        if sk == keys.PROFILE_SK and customer_id and pk.endswith(f"#C#{customer_id}"):
            current = (old or {}).get("version")
            return VersionConflict(
                "the customer changed since it was read; reload and retry",
                {"customer_id": customer_id, "current_version": current},
            )
    if cancelled.failed_indexes("TransactionConflict"):
        return Conflict("a concurrent change touched the same items; retry")
    return Conflict("the change conflicts with stored data", {"reasons": cancelled.reasons})


def commit(write: Write, token: str | None = None) -> ProfileRecord:
    tx = Transaction()
    profile = stage(tx, write)
    try:
        tx.commit(token)
    except TransactionCancelled as cancelled:
        refused = _guard_refusal(write, cancelled)
        raise (refused or explain_cancellation(tx, cancelled, profile["customer_id"])) from cancelled
    return profile


def _guard_refusal(write: Write, cancelled: TransactionCancelled) -> DomainError | None:
    """The guard's error when the profile still had the version read (so the guard failed)."""
    if write.guard is None or write.before is None:
        return None
    for index in cancelled.failed_indexes():
        old = cancelled.items[index] if index < len(cancelled.items) else None
        if (
            old is not None
            and old.get("SK") == keys.PROFILE_SK
            and old.get("customer_id") == write.before["customer_id"]
            and old.get("version") == write.before["version"]
        ):
            return write.guard.refused(strip_keys(old))
    return None


def get_profile(business_id: str, customer_id: str, consistent: bool = False) -> ProfileRecord | None:
    item = get_item(keys.customer_key(business_id, customer_id), consistent=consistent)
    return cast(ProfileRecord, item) if item else None


def get_profiles(
    business_id: str, customer_ids: Sequence[str], consistent: bool = True
) -> dict[str, ProfileRecord]:
    """Profiles by customer id (BatchGetItem, 100 keys a request); unknown ids are absent."""
    found = batch_get([keys.customer_key(business_id, c) for c in customer_ids], consistent=consistent)
    return {p["customer_id"]: cast(ProfileRecord, p) for p in found}


def get_profiles_and_catalog(
    business_id: str, customer_ids: Sequence[str]
) -> tuple[dict[str, ProfileRecord], dict[str, Any] | None]:
    """Profiles by id and the business's status catalog item, in one BatchGetItem: a list
    page shows status names and ranks, and asking for the catalog with the page saves a request."""
    wanted = [keys.customer_key(business_id, c) for c in customer_ids]
    found = batch_get([*wanted, keys.status_catalog_key(business_id)])
    profiles = {p["customer_id"]: cast(ProfileRecord, p) for p in found if p["SK"] == keys.PROFILE_SK}
    catalog = next((i for i in found if i["SK"] == keys.STATUS_CATALOG_SK), None)
    return profiles, catalog


def get_profile_view(business_id: str, customer_id: str) -> dict[str, dict[str, Any]]:
    """What a profile view shows, in one BatchGetItem: the profile, its points wallet and tier
    record, the status catalog (names, ranks, the tier ladder) and the points settings (time
    zone). Keyed by sort key; absent items are missing."""
    wanted = [
        keys.customer_key(business_id, customer_id),
        keys.wallet_key(business_id, customer_id),
        keys.tier_key(business_id, customer_id),
        keys.status_catalog_key(business_id),
        keys.points_settings_key(business_id),
    ]
    return {i["SK"]: i for i in batch_get(wanted)}


def require_profile(business_id: str, customer_id: str, consistent: bool = True) -> ProfileRecord:
    profile = get_profile(business_id, customer_id, consistent=consistent)
    if profile is None:
        raise NotFound("customer not found", {"customer_id": customer_id})
    return profile


def find_by_identifier(business_id: str, kind: str, value: str) -> str | None:
    item = get_item(keys.lookup_key(business_id, kind, value))
    return item["customer_id"] if item else None


def history(business_id: str, customer_id: str, limit: int, cursor: str | None) -> QueryPage[dict[str, Any]]:
    pk = keys.customer_pk(business_id, customer_id)
    return query_prefix(pk, keys.EVENT_SK_PREFIX, limit, cursor, forward=False)


def list_by_program_status(
    business_id: str, status: str, limit: int, cursor: str | None
) -> QueryPage[ProfileRecord]:
    """Profiles of one program status, oldest first: the status's shards merged (GSI2 projects
    whole profiles, so a page needs no other read)."""
    page = merged_query(
        keys.program_status_pks(business_id, status),
        index=keys.GSI2,
        limit=limit,
        cursor=cursor,
        list_id=f"B#{business_id}#PS#{status}",
    )
    return page.typed(ProfileRecord)


def search_name_index(
    business_id: str, anchor: str, limit: int, cursor: str | None, list_id: str
) -> QueryPage[dict[str, Any]]:
    """Name word entries whose word starts with `anchor`: one partition, in word order.

    `list_id` names the whole search (its words and filters): a cursor works only for it.
    """
    return query(
        "GSI1PK = :pk AND begins_with(GSI1SK, :p)",
        {":pk": keys.name_index_pk(business_id, anchor), ":p": anchor},
        index=keys.GSI1,
        limit=limit,
        cursor=cursor,
        partition=list_id,
    )


def list_status_holders(
    business_id: str, code: str, limit: int, cursor: str | None
) -> QueryPage[dict[str, Any]]:
    """Status assignment items of `code` by customer id (their `customer_id` names the holder)."""
    return merged_query(
        keys.status_holder_pks(business_id, code),
        index=keys.GSI1,
        limit=limit,
        cursor=cursor,
        list_id=f"B#{business_id}#SC#{code}",
    )


__all__ = [
    "AuditEntry",
    "ConditionFailed",
    "Guard",
    "Suppressed",
    "Write",
    "commit",
    "find_by_identifier",
    "get_profile",
    "history",
    "stage",
    "strip_keys",
    "with_index_keys",
]
