"""Exclusion through the real lambda_handler on moto: erasure, suppression, cards, statuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Api, Aws, table_items

PERSON = {
    "email": "zelda.quux@example.com",
    "phone": "+44 20 7946 0958",
    "first_name": "Zelda",
    "last_name": "Quuxworth",
    "external_id": "CRM-778899",
    "attributes": {"favourite_shop": "Quuxville high street", "instagram_followers": 12000},
}


def with_cards_and_statuses(aws: Aws, cid: str, cards: int, statuses: int) -> None:
    """Give the customer cards and status assignments the way the card and status use cases store them."""
    from loyalty.repository import customers as repo
    from loyalty.repository import keys
    from loyalty.repository.base import Transaction
    from loyalty.repository.ranked_statuses import assignment_item

    profile = repo.require_profile("biz-1", cid)
    numbers = [f"7000{i:06d}" for i in range(cards)]
    codes = [f"S{i:03d}" for i in range(statuses)]
    after = repo.strip_keys(profile)
    after["cards"] = [{"number": n, "state": "activated"} for n in numbers]
    after["statuses"] = {c: {"assigned_at": "2026-01-01T00:00:00Z"} for c in codes}
    # Many items: write the satellites first, then the profile that lists them.
    pending = [
        {
            **keys.card_key("biz-1", n),
            "entity": keys.ENTITY_CARD,
            "business_id": "biz-1",
            "number": n,
            "state": "activated",
            "customer_id": cid,
            "version": 1,
        }
        for n in numbers
    ] + [assignment_item("biz-1", cid, c, after["statuses"][c]) for c in codes]
    for start in range(0, len(pending), 100):
        tx = Transaction()
        for item in pending[start : start + 100]:
            tx.put(item)
        tx.commit()
    entry = repo.AuditEntry("update", {"role": "staff"}, profile["program_status"], profile["program_status"])
    repo.commit(repo.Write(after=after, before=profile, entry=entry))


def personal_values() -> list[str]:
    return ["zelda", "quuxworth", "quux@", "7946", "crm-778899", "quuxville"]


def assert_no_personal_data_anywhere(aws: Aws) -> None:
    dump = json.dumps(table_items(aws), default=str).lower()
    for value in personal_values():
        assert value not in dump, f"{value!r} is still stored"


@pytest.mark.parametrize("who", ["customer", "staff"])
def test_exclusion_erases_personal_data_everywhere(api: Api, aws: Aws, who: str) -> None:
    # Given an active customer with every kind of personal data, two cards and a status
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "active", "reason": "Zelda at the till"})
    with_cards_and_statuses(aws, cid, cards=2, statuses=0)
    # And a status assigned through the statuses routes
    api.ok(
        "POST", "/v1/status-definitions", {"code": "vip", "name": "Very important", "rank": 1}, role="admin"
    )
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip")
    assert [s["code"] for s in api.ok("GET", f"/v1/customers/{cid}")["statuses"]] == ["vip"]
    assert api.ok("GET", "/v1/customers", query={"status_code": "vip"})["items"]
    # (the table holds the person's data before: the scan below can fail)
    dump = json.dumps(table_items(aws), default=str).lower()
    assert all(value in dump for value in personal_values())
    # When the exclusion is asked for (by the customer, or by staff on their request)
    kw: dict[str, Any] = {"role": "customer", "sub": cid} if who == "customer" else {}
    response = api("POST", f"/v1/customers/{cid}/exclusion", {"reason": "asked by phone"}, **kw)
    # Then the profile is excluded with no personal data, cards deleted and no statuses
    assert response.status == 200, response
    body = response.body
    assert body["program_status"] == "excluded"
    for field in ("email", "phone", "first_name", "last_name", "external_id"):
        assert body[field] is None
    assert body["attributes"] == {} and body["statuses"] == [] and body["best_status"] is None
    assert {c["state"] for c in body["cards"]} == {"deleted"}
    assert api.ok("GET", f"/v1/customers/{cid}") == {**body, "balance": 0}
    # And no item in the whole table holds any of it (lookups, audit reasons, index keys)
    assert_no_personal_data_anywhere(aws)
    # And no search by the old identifiers or name finds anything
    assert api.ok("GET", "/v1/customers", query={"email": PERSON["email"]})["items"] == []
    assert api.ok("GET", "/v1/customers", query={"q": "zelda"})["items"] == []
    assert api.ok("GET", "/v1/customers", query={"status_code": "vip"})["items"] == []
    from loyalty.repository.customers import find_by_identifier

    assert find_by_identifier("biz-1", "phone", "+442079460958") is None
    assert find_by_identifier("biz-1", "external_id", PERSON["external_id"]) is None
    # And the card items are deleted, the status assignment items gone
    items = table_items(aws)
    cards = [i for i in items if i.get("entity") == "card"]
    assert len(cards) == 2 and {c["state"] for c in cards} == {"deleted"}
    assert not [i for i in items if i.get("entity") == "status_assignment"]
    # And the identifiers are kept only as keyed hashes, one per kind
    suppressed = [i for i in items if i["SK"] == "SUPPRESS"]
    assert sorted(i["kind"] for i in suppressed) == ["email", "external_id", "phone"]
    # And the history keeps who excluded and when, naming erased fields, not their values
    events = api.ok("GET", f"/v1/customers/{cid}/history")["items"]
    newest = events[0]
    assert (newest["event"], newest["from_status"], newest["to_status"]) == ("exclude", "active", "excluded")
    assert newest["actor"]["role"] == who and newest["at"]
    assert newest["reason"] == "asked by phone"
    assert {"email", "phone", "first_name", "external_id"} <= set(newest["details"]["erased_fields"])
    assert newest["details"]["cards_deleted"] == 2
    assert [e["reason"] for e in events if e["event"] == "register"] == ["[erased]"]


def test_an_excluded_customer_refuses_every_further_change(api: Api, aws: Aws) -> None:
    # Given an excluded customer
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    api.ok("POST", f"/v1/customers/{cid}/exclusion")
    version = api.ok("GET", f"/v1/customers/{cid}")["version"]
    # When any change is tried
    attempts = [
        api("PUT", f"/v1/customers/{cid}/program-status", {"status": "active"}),
        api("PUT", f"/v1/customers/{cid}/program-status", {"status": "pending", "expected_version": version}),
        api("POST", f"/v1/customers/{cid}/opt-out"),
        api("POST", f"/v1/customers/{cid}/exclusion"),
        api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid),
        api("PATCH", f"/v1/customers/{cid}", {"first_name": "Zelda"}),
    ]
    # Then every one is a 409 and nothing changed
    assert [r.status for r in attempts] == [409] * len(attempts), attempts
    assert api.ok("GET", f"/v1/customers/{cid}")["version"] == version
    # And the same person cannot be imported again by the business (suppression)
    again = api("POST", "/v1/customers", {"email": PERSON["email"]})
    assert again.status == 409 and again.body["error"]["code"] == "suppressed"


def test_a_reason_quoting_personal_data_is_not_stored(api: Api, aws: Aws) -> None:
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    api.ok("POST", f"/v1/customers/{cid}/exclusion", {"reason": "Zelda Quuxworth asked by e-mail"})
    assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["reason"] == "[erased]"
    assert_no_personal_data_anywhere(aws)


def test_an_exclusion_over_100_items_completes_in_safe_chunks(api: Api, aws: Aws) -> None:
    # Given a customer with 70 cards and 45 statuses (more than one transaction holds)
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    with_cards_and_statuses(aws, cid, cards=70, statuses=45)
    # When they are excluded
    response = api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid)
    # Then everything is erased, every card deleted, every assignment gone
    assert response.status == 200, response
    items = table_items(aws)
    assert {i["state"] for i in items if i.get("entity") == "card"} == {"deleted"}
    assert not [i for i in items if i.get("entity") == "status_assignment"]
    assert_no_personal_data_anywhere(aws)
    assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["details"]["cards_deleted"] == 70


def test_exclusion_with_a_stale_version_changes_nothing(api: Api, aws: Aws) -> None:
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "pending"})
    before = table_items(aws)
    response = api("POST", f"/v1/customers/{cid}/exclusion", {"expected_version": 1})
    assert response.status == 409 and response.body["error"]["details"]["current_version"] == 2
    assert table_items(aws) == before


def test_a_customer_cannot_exclude_someone_else(api: Api, aws: Aws) -> None:
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    response = api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub="someone-else")
    assert response.status == 404
    assert api.ok("GET", f"/v1/customers/{cid}")["email"] == PERSON["email"]
    # And the service role (not a person acting on a request) may not exclude
    assert api("POST", f"/v1/customers/{cid}/exclusion", role="service").status == 403


def test_exclusion_retry_with_idempotency_key_returns_the_first_answer(api: Api, aws: Aws) -> None:
    cid = api.ok("POST", "/v1/customers", PERSON)["customer_id"]
    headers = {"Idempotency-Key": "exclude-1"}
    first = api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid, headers=headers)
    second = api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid, headers=headers)
    assert first.status == 200, first
    assert (second.status, second.body) == (first.status, first.body)
    assert [e["event"] for e in api.ok("GET", f"/v1/customers/{cid}/history")["items"]] == [
        "exclude",
        "import",
    ]


def test_an_anonymous_app_user_with_a_virtual_card_can_be_excluded(api: Api, aws: Aws) -> None:
    # Given an app user who signed up anonymously with a device, an e-mail and a virtual card
    body = {"device_id": "device-zq-4411", "email": "zelda.quux@example.com", "virtual_card": True}
    created = api.ok("POST", "/v1/anonymous-customers", body, role="customer", sub="app-user-1")
    cid = created["customer_id"]
    number = created["cards"][0]["number"]
    # When they ask to be excluded from the app
    response = api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid)
    # Then the device id and e-mail are gone from every item, lookups included
    assert response.status == 200, response
    dump = json.dumps(table_items(aws), default=str).lower()
    assert "device-zq-4411" not in dump and "zelda" not in dump
    # And the virtual card (stored by the registration use case) is deleted
    card = api.ok("GET", f"/v1/cards/{number}")
    assert card["state"] == "deleted"


def test_history_pages_fill_the_from_status_of_no_read_changes_across_pages(api: Api) -> None:
    # Given a customer changed twice without reads (expected_version)
    cid = api.ok("POST", "/v1/customers", {"email": "pages@example.com"})["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "active", "expected_version": 1})
    api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": "inactive", "expected_version": 2})
    # When the history is read one event per page
    first = api.ok("GET", f"/v1/customers/{cid}/history", query={"limit": 1})
    second = api.ok("GET", f"/v1/customers/{cid}/history", query={"limit": 1, "cursor": first["next_cursor"]})
    # Then each change names where it started, even when that event is on the next page
    assert [(e["from_status"], e["to_status"]) for e in first["items"] + second["items"]] == [
        ("active", "inactive"),
        ("imported", "active"),
    ]


def test_exclusion_purges_stored_idempotent_answers_that_quote_the_person(api: Api, aws: Aws) -> None:
    # Given a customer created and edited with Idempotency-Keys (their answers quote the e-mail)
    created = api("POST", "/v1/customers", PERSON, headers={"Idempotency-Key": "create-person"})
    cid = created.body["customer_id"]
    api.ok(
        "PATCH", f"/v1/customers/{cid}", {"first_name": "Zed"}, headers={"Idempotency-Key": "patch-person"}
    )
    # And another customer's stored answer, which must survive
    other = api(
        "POST", "/v1/customers", {"email": "keep.me@example.com"}, headers={"Idempotency-Key": "other"}
    )
    assert PERSON["email"] in json.dumps(table_items(aws), default=str).lower()
    # When the person is excluded
    api.ok("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid)
    # Then no stored item anywhere quotes their e-mail, stored answers included
    dump = json.dumps(table_items(aws), default=str).lower()
    assert PERSON["email"].lower() not in dump
    # And the other customer's answer still replays
    again = api(
        "POST", "/v1/customers", {"email": "keep.me@example.com"}, headers={"Idempotency-Key": "other"}
    )
    assert again.body["customer_id"] == other.body["customer_id"]
