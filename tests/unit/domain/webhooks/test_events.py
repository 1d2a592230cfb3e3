"""Stream records -> webhook events (loyalty.domain.webhooks.events), over the sample records in events/."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loyalty.domain.webhooks import events as we
from loyalty.repository.base import deserialize, serialize, stream_change
from tests.support import load_event

CATALOG = {
    "VIP": {"name": "VIP", "rank": 2},
    "STAFF": {"name": "Staff", "rank": 1},
}
PERSONAL = ("email", "phone", "first_name", "last_name", "external_id", "attributes")


def record(name: str) -> dict[str, Any]:
    return load_event(f"webhook_dispatch/{name}.json")["Records"][0]


def derive(raw: dict[str, Any], definitions: dict[str, Any] | None = None) -> list[we.WebhookEvent]:
    """The events of a raw stream record, read as the dispatcher reads it."""
    return we.derive(stream_change(raw), definitions)


def business_of(raw: dict[str, Any]) -> str | None:
    return we.business_of(stream_change(raw))


def types(events: list[we.WebhookEvent]) -> list[str]:
    return [e.type for e in events]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("stream_customer_created", ["customer.created"]),
        ("stream_customer_edited", []),
        ("stream_customer_invited", ["customer.program_status_changed", "customer.invited"]),
        ("stream_customer_registered", ["customer.program_status_changed", "customer.registered"]),
        ("stream_statuses_changed", ["customer.statuses_changed"]),
        (
            "stream_customer_excluded",
            ["customer.program_status_changed", "customer.excluded", "customer.statuses_changed"],
        ),
        ("stream_customer_merged", ["customer.program_status_changed", "customer.merged"]),
        ("stream_card_changed", ["card.changed"]),
    ],
)
def test_each_sample_record_yields_the_designed_events(sample: str, expected: list[str]) -> None:
    # Given a stream record of a profile or card change
    given = record(sample)
    # When events are derived from it
    events = derive(given, CATALOG)
    # Then they are the events docs/design.md#webhooks names for that change, in a fixed order
    assert types(events) == expected


@pytest.mark.parametrize(
    ("event_by_from", "expected"),
    [
        (
            {"imported": "invite", "inactive": "reinvite"},
            ["customer.program_status_changed", "customer.invited"],
        ),
        ({"inactive": "reinvite"}, ["customer.program_status_changed"]),  # not the old status
    ],
)
def test_a_change_written_without_a_read_gets_its_event_from_the_old_image(
    event_by_from: dict[str, str], expected: list[str]
) -> None:
    # Given an invite stored with its event still depending on the status it started from
    given = record("stream_customer_invited")
    new = deserialize(given["dynamodb"]["NewImage"])
    new["last_change"] = {**new["last_change"], "event": None, "event_by_from": event_by_from}
    given["dynamodb"]["NewImage"] = serialize(new)
    assert deserialize(given["dynamodb"]["OldImage"])["program_status"] == "imported"
    # When events are derived
    events = derive(given, CATALOG)
    # Then the old image's status picks the event: invite from imported
    assert types(events) == expected


def test_event_ids_derive_from_the_stream_record_and_are_stable() -> None:
    # Given the same stream record delivered twice (a stream retry)
    given = record("stream_customer_invited")
    # When events are derived each time
    first, second = derive(given, CATALOG), derive(copy.deepcopy(given), CATALOG)
    # Then the ids are equal, distinct per event, and carry the record's eventID
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == len(first)
    assert all(given["eventID"] in e.id for e in first)


def test_customer_payload_has_the_fixed_fields_and_statuses_by_rank() -> None:
    # Given a record that assigns two statuses, VIP (rank 2) and STAFF (rank 1)
    given = record("stream_statuses_changed")
    # When the event is derived with the business's catalog
    (event,) = derive(given, CATALOG)
    payload = event.payload()
    # Then the payload is {type, timestamp, data} with statuses ordered by rank and the best one
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["timestamp"] == deserialize(given["dynamodb"]["NewImage"])["last_change"]["at"]
    data = payload["data"]
    assert [s["code"] for s in data["statuses"]] == ["STAFF", "VIP"]
    assert data["statuses"][0] == {"code": "STAFF", "name": "Staff", "rank": 1}
    assert data["best_status"] == "STAFF"
    assert data["program_status"] == data["previous_program_status"] == "active"


@pytest.mark.parametrize(
    "sample",
    ["stream_customer_created", "stream_customer_registered", "stream_customer_excluded"],
)
def test_no_event_carries_personal_data(sample: str) -> None:
    # Given records whose images hold e-mail, phone and names
    given = record(sample)
    # When events are derived
    events = derive(given, CATALOG)
    # Then no personal field and no personal value reaches a payload
    old = deserialize(given["dynamodb"].get("OldImage") or {})
    new = deserialize(given["dynamodb"]["NewImage"])
    values = {str(image[f]) for image in (old, new) for f in PERSONAL if image.get(f)}
    for event in events:
        text = str(event.payload())
        assert not any(f in event.data for f in PERSONAL)
        assert not any(v in text for v in values)


def test_registration_that_creates_an_active_customer_is_customer_registered() -> None:
    # Given an INSERT of a profile created active by registration
    given = copy.deepcopy(record("stream_customer_created"))
    image = deserialize(given["dynamodb"]["NewImage"])
    image.update(program_status="active", last_change={**image["last_change"], "event": "register"})
    given["dynamodb"]["NewImage"] = serialize(image)
    # When events are derived
    # Then it is one customer.registered (not customer.created)
    assert types(derive(given, CATALOG)) == ["customer.registered"]


def test_a_rerank_that_only_reorders_statuses_is_statuses_changed() -> None:
    # Given a profile MODIFY where a re-rank swapped two statuses below an unchanged best status
    given = copy.deepcopy(record("stream_customer_edited"))
    old = deserialize(given["dynamodb"]["OldImage"])
    holding = {"statuses": {"vip": {}, "a": {}, "b": {}}, "best_status": "vip"}
    old.update(holding, status_order=["vip", "a", "b"])
    new = {**old, "version": old["version"] + 1, "status_order": ["vip", "b", "a"]}
    given["dynamodb"]["OldImage"], given["dynamodb"]["NewImage"] = serialize(old), serialize(new)
    # When events are derived / Then subscribers hear about the new order
    assert types(derive(given, CATALOG)) == ["customer.statuses_changed"]
    # And the same profile rewritten without a new order is no event
    given["dynamodb"]["NewImage"] = serialize({**old, "version": old["version"] + 1})
    assert types(derive(given, CATALOG)) == []


def test_card_version_bump_alone_is_not_an_event_and_remove_is_ignored() -> None:
    # Given a card MODIFY that changes nothing a subscriber sees, and a REMOVE
    bump = copy.deepcopy(record("stream_card_changed"))
    old = deserialize(bump["dynamodb"]["OldImage"])
    bump["dynamodb"]["NewImage"] = serialize({**old, "version": old["version"] + 1})
    removed = copy.deepcopy(record("stream_card_changed"))
    removed["eventName"] = "REMOVE"
    # When events are derived / Then there are none
    assert derive(bump) == []
    assert derive(removed) == []


def test_business_is_read_from_the_item_never_from_its_key() -> None:
    # Given profile and card records / When the business is read / Then it is the item's business_id
    assert business_of(record("stream_customer_created")) == "biz-1"
    assert business_of(record("stream_card_changed")) == "biz-1"
    assert business_of({"dynamodb": {"Keys": {"PK": {"S": "INVTOKEN#x"}, "SK": {"S": "TOKEN"}}}}) is None
    # And a key that looks like another tenant's (ids with the separator) does not move the event
    forged = copy.deepcopy(record("stream_customer_created"))
    forged["dynamodb"]["Keys"]["PK"] = {"S": "B#acme#C#evil#C#victim1"}
    assert business_of(forged) == "biz-1"


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        ({"events": ["customer.invited"]}, True),
        ({"events": ["card.changed"]}, False),
        ({"events": ["*"]}, True),
        ({"events": ["*"], "ignore_actors": ["scheduler"]}, False),
        ({"events": ["*"], "ignore_actors": ["role:scheduler"]}, False),
        ({"events": ["*"], "ignore_actors": ["someone-else", "role:admin"]}, True),
    ],
)
def test_subscription_filters_by_type_and_ignored_actors(subscription: dict[str, Any], wanted: bool) -> None:
    # Given the invitation event (the scheduler, sub "scheduler", invited the customer)
    invited = next(e for e in derive(record("stream_customer_invited")) if e.type == "customer.invited")
    # When a subscription's filter is applied / Then it wants the event or not
    assert we.wants(subscription, invited) is wanted


@pytest.mark.parametrize(
    ("entry_type", "expected"),
    [
        ("earn", ["points.earned"]),
        ("redeem", ["points.redeemed"]),
        ("redeem_reversal", ["points.reversed"]),
        ("earn_reversal", ["points.reversed"]),
        ("adjust", ["points.adjusted"]),
        ("expire", ["points.expired"]),
        ("debt", ["balance.debt"]),
        # moves a subscriber sees in the balance of the next event, not events of their own
        ("activate", []),
        ("debt_settle", []),
        ("merge_in", []),
        ("merge_out", []),
        ("forfeit", []),
    ],
)
def test_each_ledger_entry_type_maps_to_its_event(entry_type: str, expected: list[str]) -> None:
    # Given a new ledger entry of that type
    given = copy.deepcopy(record("stream_points_earned"))
    new = deserialize(given["dynamodb"]["NewImage"])
    given["dynamodb"]["NewImage"] = serialize({**new, "type": entry_type})
    # When events are derived / Then the type is the designed one
    assert types(derive(given)) == expected


def test_a_ledger_event_carries_amounts_and_ids_never_the_purchase_details() -> None:
    # Given the earn entry of a purchase (its details hold the purchase's own fields)
    given = record("stream_points_earned")
    # When its event is derived
    (event,) = derive(given)
    # Then the data is the amounts and ids, the actor is who earned, and no detail leaks
    assert event.data == {
        "customer_id": "c0ffee00000000000000000000000001",
        "entry_id": "000000000001",
        "entry_type": "earn",
        "points": 120,
        "balance_after": 120,
        "external_id": "pos-4711",
        "occurred_at": "2026-11-30T10:00:00.000000Z",
    }
    assert event.actor == {"sub": "till-7", "role": "service"}
    assert event.business_id == "biz-1"


def test_a_ledger_entry_is_an_event_only_when_written_and_a_notice_is_points_expiring() -> None:
    # Given an entry rewritten (never done, but a stream MODIFY must not announce it twice)
    rewritten = copy.deepcopy(record("stream_points_earned"))
    rewritten["eventName"] = "MODIFY"
    rewritten["dynamodb"]["OldImage"] = rewritten["dynamodb"]["NewImage"]
    # When events are derived / Then there are none
    assert derive(rewritten) == []
    # And a reminder notice is points.expiring with what remains and when
    (expiring,) = derive(record("stream_points_expiring"))
    assert expiring.type == "points.expiring"
    assert expiring.data == {
        "customer_id": "c0ffee00000000000000000000000001",
        "points": 35,
        "expires_at": "2027-11-30T22:59:59.999999Z",
        "days": 7,
        "lot_id": "L000000001",
    }
