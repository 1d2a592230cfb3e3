"""Invitation settings, the invitation-due index (GSI3, sharded) and invitation tokens.

Settings live in the business partition; while enabled they carry GSI2 keys under one
constant partition, so the scheduled run finds enabled businesses with one sparse Query.
A token item is keyed by the SHA-256 of the token (the token itself is never stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from loyalty.adapters import aws
from loyalty.domain.records import InvitationSettingsRecord, InvitationTokenRecord, ProfileRecord
from loyalty.repository import keys
from loyalty.repository.base import Transaction, get_item, merged_query, query_all, serialize, table_name


def get_settings(business_id: str) -> InvitationSettingsRecord | None:
    item = get_item(keys.invitation_settings_key(business_id), consistent=True)
    return cast(InvitationSettingsRecord | None, item)


def put_settings(business_id: str, values: dict[str, Any], at: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        **keys.invitation_settings_key(business_id),
        "entity": keys.ENTITY_INVITATION_SETTINGS,
        "business_id": business_id,
        **values,
        "updated_at": at,
    }
    if values.get("enabled"):
        item["GSI2PK"] = keys.INVITATIONS_ENABLED_PK
        item["GSI2SK"] = business_id
    # Last writer wins: settings are a whole document replaced by an admin.
    aws.dynamodb().put_item(TableName=table_name(), Item=serialize(item))
    return item


def enabled_settings() -> Iterator[dict[str, Any]]:
    """Settings items of every business whose invitation runs are on."""
    yield from query_all("GSI2PK = :pk", {":pk": keys.INVITATIONS_ENABLED_PK}, index=keys.GSI2, limit=100)


def due_customers(business_id: str, now: str, limit: int) -> list[ProfileRecord]:
    """Up to `limit` customer profiles due an invitation or reminder at `now`, oldest due first.

    The key condition alone selects them (no filter), so every item read is a candidate;
    the index's shards are read in parallel and merged by due time.
    """
    # GSI3SK is "<due>#<customer_id>": every due time <= now sorts below "<now>$" ('$' > '#').
    page = merged_query(
        keys.invite_due_pks(business_id),
        index=keys.GSI3,
        limit=limit,
        cursor=None,
        list_id=f"B#{business_id}#INVITE_DUE",
        below=f"{now}$",
    )
    return cast(list[ProfileRecord], page.items)


def token_item(
    token_hash: str, profile: ProfileRecord, invited_at: str, expires_at: str, ttl: int, kind: str
) -> dict[str, Any]:
    return {
        **keys.invitation_token_key(token_hash),
        "entity": keys.ENTITY_INVITATION_TOKEN,
        "business_id": profile["business_id"],
        "customer_id": profile["customer_id"],
        "invited_at": invited_at,
        "kind": kind,
        "expires_at": expires_at,
        "ttl": ttl,
    }


def get_token(token_hash: str) -> InvitationTokenRecord | None:
    item = get_item(keys.invitation_token_key(token_hash), consistent=True)
    return cast(InvitationTokenRecord | None, item)


def stage_token_use(tx: Transaction, token_hash: str, event: str, at: str) -> int:
    """Mark the token used in the answer's transaction: single use, and not after expiry."""
    return tx.update(
        keys.invitation_token_key(token_hash),
        "SET used_at = :at, used_for = :event",
        "attribute_exists(PK) AND attribute_not_exists(used_at) AND expires_at > :at",
        values={":at": at, ":event": event},
    )


def stage_token_put(tx: Transaction, item: dict[str, Any]) -> None:
    tx.put(item, "attribute_not_exists(PK)")


def stage_token_delete(tx: Transaction, token_hash: str) -> None:
    tx.delete(keys.invitation_token_key(token_hash))
