"""Webhook subscriptions and the delivery log.

Subscriptions live in the business partition (`B#<bid>`, SK `WEBHOOK#<id>`), so the
dispatcher reads all of a business's subscriptions with one Query. Delivery attempts
live in their own partition per subscription (`B#<bid>#WEBHOOK#<id>`), SK
`DELIVERY#<stamp>#<delivery id>`: newest first is a backwards Query, and a delivery id
carries its stamp so one GetItem finds it. Attempts expire through the table's TTL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from botocore.exceptions import ClientError

from loyalty.adapters import aws
from loyalty.domain.errors import NotFound
from loyalty.domain.records import SubscriptionRecord
from loyalty.repository import keys
from loyalty.repository.base import (
    ConditionFailed,
    QueryPage,
    get_item,
    query_all,
    query_prefix,
    serialize,
    table_name,
    translate,
)

# `<20-digit UTC stamp><12 hex>`: sortable, and the stamp locates the item.
_DELIVERY_ID = re.compile(r"^(\d{20})([0-9a-f]{12})$")


# --- subscriptions -------------------------------------------------------------------


def create_subscription(item: Mapping[str, Any]) -> None:
    key = keys.webhook_key(item["business_id"], item["webhook_id"])
    try:
        aws.dynamodb().put_item(
            TableName=table_name(),
            Item=serialize({**item, **key, "entity": keys.ENTITY_WEBHOOK}),
            ConditionExpression="attribute_not_exists(PK)",
        )
    except ClientError as exc:
        raise translate(exc) from exc


def get_subscription(business_id: str, webhook_id: str) -> SubscriptionRecord | None:
    return cast(SubscriptionRecord | None, get_item(keys.webhook_key(business_id, webhook_id)))


def require_subscription(business_id: str, webhook_id: str) -> SubscriptionRecord:
    found = get_subscription(business_id, webhook_id)
    if found is None:
        raise NotFound("webhook not found", {"webhook_id": webhook_id})
    return found


def list_subscriptions(business_id: str, limit: int, cursor: str | None) -> QueryPage[dict[str, Any]]:
    return query_prefix(keys.business_pk(business_id), keys.WEBHOOK_SK_PREFIX, limit, cursor)


def all_subscriptions(business_id: str) -> list[SubscriptionRecord]:
    """Every subscription of a business: one Query (a business has few)."""
    found = list(
        query_all(
            "PK = :pk AND begins_with(SK, :p)",
            {":pk": keys.business_pk(business_id), ":p": keys.WEBHOOK_SK_PREFIX},
        )
    )
    return cast(list[SubscriptionRecord], found)


def delete_subscription(business_id: str, webhook_id: str) -> None:
    try:
        aws.dynamodb().delete_item(
            TableName=table_name(),
            Key=serialize(keys.webhook_key(business_id, webhook_id)),
            ConditionExpression="attribute_exists(PK)",
        )
    except ClientError as exc:
        error = translate(exc)
        if isinstance(error, ConditionFailed):
            raise NotFound("webhook not found", {"webhook_id": webhook_id}) from exc
        raise error from exc


# --- delivery log --------------------------------------------------------------------


def delivery_key(business_id: str, webhook_id: str, delivery_id: str) -> dict[str, str] | None:
    found = _DELIVERY_ID.match(delivery_id)
    if not found:
        return None
    return keys.webhook_delivery_key(business_id, webhook_id, found.group(1), delivery_id)


# Ids and the time live in the key; items do not repeat them (less to write per attempt).
_IN_KEY = ("business_id", "webhook_id", "delivery_id", "sent_at")


def sent_at_of(delivery_id: str) -> str:
    """ISO time of an attempt, from the stamp that starts its delivery id."""
    raw = delivery_id[:20]
    return f"{raw[0:4]}-{raw[4:6]}-{raw[6:8]}T{raw[8:10]}:{raw[10:12]}:{raw[12:14]}.{raw[14:20]}Z"


def delivery_item(attempt: Mapping[str, Any]) -> dict[str, Any]:
    key = delivery_key(attempt["business_id"], attempt["webhook_id"], attempt["delivery_id"])
    assert key is not None, "delivery ids are made by new_delivery_id"
    fields = {k: v for k, v in attempt.items() if k not in _IN_KEY}
    return {**fields, **key, "entity": keys.ENTITY_DELIVERY}


def attempt_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The attempt a delivery item stores, with the ids and time read back from its key."""
    prefix, _, webhook_id = str(item["PK"]).rpartition("#WEBHOOK#")
    delivery_id = str(item["SK"]).rsplit("#", 1)[1]
    sent_at = sent_at_of(delivery_id)
    fields = {k: v for k, v in item.items() if k not in ("PK", "SK", "entity")}
    return {
        **fields,
        "business_id": prefix[2:],
        "webhook_id": webhook_id,
        "delivery_id": delivery_id,
        "sent_at": sent_at,
    }


def log_attempts(attempts: Sequence[Mapping[str, Any]]) -> None:
    """Write attempt items with BatchWriteItem (25 a call), retrying unprocessed ones.

    Each attempt has a fresh unique id and is never updated, so there is no condition
    to keep; batching is what keeps a busy stream batch to a few requests.
    """
    items = [delivery_item(a) for a in attempts]
    for start in range(0, len(items), 25):
        request: dict[str, Any] = {
            table_name(): [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        }
        while request:
            try:
                out = aws.dynamodb().batch_write_item(RequestItems=request)
            except ClientError as exc:
                raise translate(exc) from exc
            request = out.get("UnprocessedItems") or {}


def get_delivery(business_id: str, webhook_id: str, delivery_id: str) -> dict[str, Any] | None:
    key = delivery_key(business_id, webhook_id, delivery_id)
    item = get_item(key) if key else None
    return attempt_from_item(item) if item else None


def list_deliveries(
    business_id: str, webhook_id: str, limit: int, cursor: str | None
) -> QueryPage[dict[str, Any]]:
    pk = keys.webhook_delivery_pk(business_id, webhook_id)
    page = query_prefix(pk, keys.DELIVERY_SK_PREFIX, limit, cursor, forward=False)
    return QueryPage([attempt_from_item(i) for i in page.items], page.next_cursor)
