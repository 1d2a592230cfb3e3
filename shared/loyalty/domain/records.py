"""The shape of every stored item, as the code reads and writes it (keys and index attributes
are added by loyalty.repository and stripped on the way out).

`total=False`: an item holds what its writer set; absent optional fields read as missing.
Values are plain JSON-like Python values (numbers come back as int or float).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NotRequired, TypedDict, cast

# Identifiers unique within a business (a lookup item each, written with the profile).
IdentifierKind = Literal["email", "phone", "external_id", "device_id"]
# The ones that name a person: matched by imports, suppressed after exclusion.
PERSON_IDENTIFIERS: tuple[IdentifierKind, ...] = ("email", "phone", "external_id")
Provenance = Literal["verified", "staff", "import", "self"]


class ActorRecord(TypedDict):
    sub: str
    role: str


class LastChange(TypedDict, total=False):
    event: str | None
    event_by_from: dict[str, str]  # a change written without a read: the event per start status
    actor: ActorRecord
    at: str


class CardEntry(TypedDict):
    """A card as the profile lists it."""

    number: str
    state: str


class Assignment(TypedDict, total=False):
    """A ranked status a customer holds, as the profile stores it (by code)."""

    source: str  # "manual" or "rule"
    assigned_by: str
    assigned_at: str
    expires_at: str | None


class ProfileRecord(TypedDict, total=False):
    business_id: str
    customer_id: str
    program_status: str
    version: int
    created_at: str
    updated_at: str
    last_change: LastChange
    email: str
    phone: str
    first_name: str
    last_name: str
    external_id: str
    device_id: str
    attributes: dict[str, Any]
    marketing_consent: bool
    statuses: dict[str, Assignment]
    status_order: list[str]  # codes held, best first
    best_status: str | None
    cards: list[CardEntry]
    merged_into: str
    merged_from: list[str]
    invitation_count: int
    invited_at: str
    last_invited_at: str
    reminders_sent: int
    invite_due_at: str | None
    registered_at: str
    # How each identifier became known: "verified" (the identity provider or an invitation
    # proved it), "staff", "import" or "self" (declared by the customer without proof).
    identifier_sources: dict[str, str]
    terms_version: str
    terms_accepted_at: str


class AuditRecord(TypedDict, total=False):
    business_id: str
    customer_id: str
    version: int
    event: str | None
    from_status: str | None
    to_status: str | None
    actor: ActorRecord
    reason: str | None
    at: str
    details: dict[str, Any]


class CardRecord(TypedDict, total=False):
    business_id: str
    number: str
    state: str
    previous_state: str
    blocked_by: str  # "customer" (lost, they may unblock) or "staff" (only staff may)
    secret_hash: str  # keyed digest of the secret printed with a packed card
    secret_failures: int  # wrong secrets tried; the card locks after a few
    customer_id: str
    issued_to: str  # the `new` virtual owner it was packed for
    virtual: bool
    replaced_by: str
    replaces: str
    version: int
    created_at: str
    updated_at: str
    deleted_at: str


class StatusDefinitionRecord(TypedDict, total=False):
    code: str
    name: str
    description: str | None
    rank: int
    customer_facing: bool
    modifiers: dict[str, Any]
    rule: dict[str, Any]
    job_id: str
    created_at: str
    updated_at: str


class CatalogRecord(TypedDict):
    """All of a business's ranked-status definitions: one versioned item."""

    definitions: dict[str, StatusDefinitionRecord]
    version: int
    jobs: list[str]  # recent job ids
    deleting: list[str]  # codes whose assignments are being removed
    # The tier ladder (docs/design.md#tiers): tiers are ranked statuses of this group, kept in
    # the same item so a re-rank and the ladder's threshold order are checked in one write.
    tiers: NotRequired[dict[str, Any] | None]


class AssignmentRecord(Assignment, total=False):
    """The assignment item in the customer's partition (indexed by code and by expiry)."""

    business_id: str
    customer_id: str
    code: str


class StatusJobRecord(TypedDict, total=False):
    business_id: str
    job_id: str
    kind: str  # evaluate, rerank, delete
    codes: list[str]
    state: str  # queued, running, completed, failed
    processed: int
    changed: int
    failed: int
    error: str
    actor: ActorRecord
    created_at: str
    updated_at: str
    finished_at: str


class ImportReportRecord(TypedDict, total=False):
    business_id: str
    import_id: str
    source: str  # json or csv
    state: str
    dry_run: bool
    total: int
    rows_done: int
    offset: int
    created: int
    updated: int
    unchanged: int
    suppressed: int
    failed: int
    error_count: int
    errors: list[dict[str, Any]]
    message: str
    actor: ActorRecord
    object_key: str
    filename: str | None
    header: dict[str, Any]
    size_bytes: int
    ignored_columns: list[str]
    lease_owner: str
    lease_until: float
    rows_expected: int
    created_at: str
    updated_at: str
    completed_at: str


class InvitationSettingsRecord(TypedDict, total=False):
    business_id: str
    enabled: bool
    batch_size: int
    reminder_after_days: int
    max_reminders: int
    sender: str | None
    program_name: str | None
    updated_at: str


class InvitationTokenRecord(TypedDict, total=False):
    business_id: str
    customer_id: str
    invited_at: str
    kind: str
    expires_at: str
    ttl: int
    used_at: str
    used_for: str


class SubscriptionRecord(TypedDict, total=False):
    business_id: str
    webhook_id: str
    url: str
    events: list[str]
    ignore_actors: list[str]
    secret: str
    created_at: str
    created_by: str


class DeliveryRecord(TypedDict, total=False):
    """One logged delivery attempt."""

    business_id: str
    webhook_id: str
    delivery_id: str
    event_id: str
    type: str
    attempt: int
    state: str  # delivered, retrying, dead
    status_code: int | None
    latency_ms: int
    error: str | None
    sent_at: str
    replay_of: str | None
    body: str
    ttl: int


def updated(profile: ProfileRecord, changes: Mapping[str, Any]) -> ProfileRecord:
    """A copy of `profile` with `changes` set: the one place fields are set by name, from
    values a schema already validated (a patch, an import row, an invitation's fields)."""
    return cast(ProfileRecord, {**profile, **changes})


def with_sources(
    after: ProfileRecord,
    before: ProfileRecord | None,
    source: Provenance | Callable[[str, str], Provenance],
) -> ProfileRecord:
    """`after` with the provenance of every identifier that is new or changed since `before`
    (an unchanged identifier keeps how it was first learnt); a removed one loses its entry.
    `source` is one provenance for all, or decides per (kind, value)."""
    sources = dict(after.get("identifier_sources") or {})
    for kind in PERSON_IDENTIFIERS:
        value, old = after.get(kind), (before or {}).get(kind)
        if not value:
            sources.pop(kind, None)
        elif value != old or kind not in sources:
            sources[kind] = source if isinstance(source, str) else source(kind, value)
    return {**after, "identifier_sources": sources}
