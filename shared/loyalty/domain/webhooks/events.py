"""Webhook events derived from DynamoDB stream records (docs/design.md#webhooks). Pure functions.

A stream record (read into a `StreamChange` by loyalty.repository.base.stream_change) of a
customer profile or a card item becomes zero or more events. The
profile's `last_change` ({event, actor, at}, written by every change) names the
lifecycle event and who caused it, so no extra read is needed; a change written without
a read may name its event by the status it started from (`event_by_from`), which the
record's old image holds. Event ids derive from
the stream record's `eventID`, so a redelivered record yields the same `webhook-id`.
Payloads never hold personal data: ids, program statuses, status codes and card states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.domain import ranked_statuses

# The sort keys of the items that make events, and the partition-key segment that precedes
# each one's id (loyalty.repository.keys builds them: B#<business>#C#<id>, B#<business>#CARD#<n>).
PROFILE_SK = "PROFILE"
CARD_SK = "CARD"
LEDGER_PREFIX = "LEDGER#"
NOTICE_PREFIX = "NOTICE#"
TIER_EVENT_PREFIX = "TIEREVT#"


def makes_events(sk: str) -> bool:
    return sk in (PROFILE_SK, CARD_SK) or sk.startswith((LEDGER_PREFIX, NOTICE_PREFIX, TIER_EVENT_PREFIX))


CUSTOMER_CREATED = "customer.created"
CUSTOMER_INVITED = "customer.invited"
CUSTOMER_PROGRAM_STATUS_CHANGED = "customer.program_status_changed"
CUSTOMER_REGISTERED = "customer.registered"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_EXCLUDED = "customer.excluded"
CUSTOMER_STATUSES_CHANGED = "customer.statuses_changed"
CARD_CHANGED = "card.changed"
POINTS_EARNED = "points.earned"
POINTS_REDEEMED = "points.redeemed"
POINTS_REVERSED = "points.reversed"
POINTS_ADJUSTED = "points.adjusted"
POINTS_EXPIRING = "points.expiring"
POINTS_EXPIRED = "points.expired"
BALANCE_DEBT = "balance.debt"
TIER_UPGRADED = "tier.upgraded"
TIER_DOWNGRADED = "tier.downgraded"
TIER_RETAINED = "tier.retained"

EVENT_TYPES: tuple[str, ...] = (
    CUSTOMER_CREATED,
    CUSTOMER_INVITED,
    CUSTOMER_PROGRAM_STATUS_CHANGED,
    CUSTOMER_REGISTERED,
    CUSTOMER_MERGED,
    CUSTOMER_EXCLUDED,
    CUSTOMER_STATUSES_CHANGED,
    CARD_CHANGED,
    POINTS_EARNED,
    POINTS_REDEEMED,
    POINTS_REVERSED,
    POINTS_ADJUSTED,
    POINTS_EXPIRING,
    POINTS_EXPIRED,
    BALANCE_DEBT,
    TIER_UPGRADED,
    TIER_DOWNGRADED,
    TIER_RETAINED,
)

# Ledger entry types that are events (the others move nothing a subscriber acts on by itself:
# activation, debt settlement, merges and forfeits show in the balance of the next event).
_LEDGER_EVENTS = {
    "earn": POINTS_EARNED,
    "redeem": POINTS_REDEEMED,
    "redeem_reversal": POINTS_REVERSED,
    "earn_reversal": POINTS_REVERSED,
    "adjust": POINTS_ADJUSTED,
    "expire": POINTS_EXPIRED,
    "debt": BALANCE_DEBT,
}

# Program-status changes that also carry a specific event: (target status, lifecycle events).
# None as lifecycle events: any change into the target status.
_SPECIFIC: tuple[tuple[str, frozenset[str] | None, str], ...] = (
    ("pending", frozenset({"invite", "reinvite"}), CUSTOMER_INVITED),
    ("active", frozenset({"register", "accept"}), CUSTOMER_REGISTERED),
    ("merged", None, CUSTOMER_MERGED),
    ("excluded", None, CUSTOMER_EXCLUDED),
)


@dataclass(frozen=True)
class WebhookEvent:
    """One event for subscribers. `actor` is internal (for `ignore_actors`), never sent."""

    id: str
    type: str
    timestamp: str
    business_id: str
    data: dict[str, Any]
    actor: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"type": self.type, "timestamp": self.timestamp, "data": self.data}


def event_id(record_event_id: str, index: int) -> str:
    # Same record, same ids: a stream redelivery or a retry is recognisable by the receiver.
    return f"evt_{record_event_id}_{index}"


@dataclass(frozen=True)
class StreamChange:
    """One stream record, its images read into plain values."""

    event_id: str  # the record's eventID: stable across redeliveries
    name: str  # INSERT, MODIFY or REMOVE
    pk: str
    sk: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    created: float | None = None  # ApproximateCreationDateTime


def business_of(record: StreamChange) -> str | None:
    """The business an item belongs to: its `business_id` field, never a split of its key
    (a key is only as unambiguous as the ids in it)."""
    if not makes_events(record.sk):
        return None
    image = record.new or record.old or {}
    business_id = image.get("business_id")
    return business_id if isinstance(business_id, str) and business_id else None


def _timestamp(record: StreamChange, image: Mapping[str, Any] | None) -> str:
    change = (image or {}).get("last_change") or {}
    at = change.get("at") or (image or {}).get("updated_at") or (image or {}).get("recorded_at")
    if at:
        return str(at)
    created = record.created
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ""


def _best(image: Mapping[str, Any], refs: list[Any]) -> str | None:
    stored = image.get("best_status")
    return str(stored) if stored else ranked_statuses.best(refs)


def _customer_data(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], definitions: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    refs = ranked_statuses.ranked(new.get("statuses") or {}, definitions)
    data: dict[str, Any] = {
        "customer_id": new["customer_id"],
        "program_status": new.get("program_status"),
        "previous_program_status": old.get("program_status") if old else None,
        "statuses": [{"code": r.code, "name": r.name, "rank": r.rank} for r in refs],
        "best_status": _best(new, refs),
        "version": new.get("version"),
    }
    if new.get("merged_into"):
        data["merged_into"] = new["merged_into"]
    return data


def _statuses_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    old_codes = set((old.get("statuses") or {}).keys())
    new_codes = set((new.get("statuses") or {}).keys())
    # status_order is rewritten by a re-rank, so a reorder that keeps the best status still counts.
    return (
        old_codes != new_codes
        or old.get("best_status") != new.get("best_status")
        or (old.get("status_order") or []) != (new.get("status_order") or [])
    )


def lifecycle_event(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """The lifecycle event of a profile change ("" when the change named none)."""
    change = new.get("last_change") or {}
    event = change.get("event")
    if event is None and old is not None:
        event = (change.get("event_by_from") or {}).get(old.get("program_status"))
    return str(event or "")


def customer_event_types(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The event types one profile change produces, in a fixed order (ids depend on it)."""
    lifecycle = lifecycle_event(old, new)
    target = new.get("program_status")
    if old is None:
        created = CUSTOMER_REGISTERED if target == "active" and lifecycle == "register" else CUSTOMER_CREATED
        types = [created]
        if new.get("statuses"):
            types.append(CUSTOMER_STATUSES_CHANGED)
        return types
    types = []
    if old.get("program_status") != target:
        types.append(CUSTOMER_PROGRAM_STATUS_CHANGED)
        for status, events, specific in _SPECIFIC:
            if target == status and (events is None or lifecycle in events):
                types.append(specific)
    if _statuses_changed(old, new):
        types.append(CUSTOMER_STATUSES_CHANGED)
    return types


_CARD_FIELDS = ("number", "state", "customer_id", "replaced_by", "replaces")


def _card_view(image: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(image.get(f) for f in _CARD_FIELDS)


def _card_data(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    data = {
        "number": new.get("number"),
        "state": new.get("state"),
        "previous_state": old.get("state") if old else None,
        "customer_id": new.get("customer_id"),
        "previous_customer_id": old.get("customer_id") if old else None,
    }
    for optional in ("replaced_by", "replaces"):
        if new.get(optional):
            data[optional] = new[optional]
    return data


def derive(
    record: StreamChange, definitions: Mapping[str, Mapping[str, Any]] | None = None
) -> list[WebhookEvent]:
    """Events of one stream record. `definitions`: the business's ranked-status definitions."""
    if record.name not in ("INSERT", "MODIFY"):
        return []  # a REMOVE is never a lifecycle change (profiles and cards are not deleted)
    business_id = business_of(record)
    old, new = record.old, record.new
    if business_id is None or new is None:
        return []
    actor = dict((new.get("last_change") or {}).get("actor") or new.get("actor") or {})
    stamp = _timestamp(record, new)
    if record.sk == PROFILE_SK:
        types = customer_event_types(old, new)
        if not types:
            return []
        data = _customer_data(old, new, definitions or {})
    elif record.sk == CARD_SK:
        if old is not None and _card_view(old) == _card_view(new):
            return []  # nothing a subscriber sees changed (e.g. a version bump)
        data = _card_data(old, new)
        types = [CARD_CHANGED]
    elif record.sk.startswith(LEDGER_PREFIX) and old is None:
        event_type = _LEDGER_EVENTS.get(str(new.get("type")))
        if event_type is None:
            return []
        data = _ledger_data(new)
        types = [event_type]
    elif record.sk.startswith(NOTICE_PREFIX) and old is None:
        data = {
            "customer_id": new.get("customer_id"),
            "points": new.get("points"),
            "expires_at": new.get("expires_at"),
            "days": new.get("days"),
            "lot_id": new.get("lot_id"),
        }
        types = [POINTS_EXPIRING]
    elif record.sk.startswith(TIER_EVENT_PREFIX) and old is None:
        data = {
            "customer_id": new.get("customer_id"),
            "from_tier": new.get("from_code"),
            "to_tier": new.get("to_code"),
            "qualifying_value": new.get("qualifying_value"),
            "retained_until": new.get("retained_until"),
            "reason": new.get("reason"),
        }
        types = [f"tier.{new.get('move')}"]
    else:
        return []
    return [
        WebhookEvent(event_id(record.event_id, i), t, stamp, business_id, data, actor)
        for i, t in enumerate(types)
    ]


def _ledger_data(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger entry as subscribers see it: amounts and ids, never the purchase's free text."""
    return {
        "customer_id": entry.get("customer_id"),
        "entry_id": entry.get("entry_id"),
        "entry_type": entry.get("type"),
        "points": entry.get("points"),
        "balance_after": entry.get("balance_after"),
        "external_id": entry.get("external_id"),
        "occurred_at": entry.get("occurred_at"),
    }


def wants(subscription: Mapping[str, Any], event: WebhookEvent) -> bool:
    """A subscription's filter: its event types ("*" for all) and the actors it ignores.

    `ignore_actors` holds subs (an integration's own identity) or `role:<role>` entries.
    """
    types = subscription.get("events") or []
    if "*" not in types and event.type not in types:
        return False
    ignored = set(subscription.get("ignore_actors") or [])
    if not ignored or not event.actor:
        return True
    sub, role = event.actor.get("sub"), event.actor.get("role")
    return sub not in ignored and f"role:{role}" not in ignored
