"""Search as staff expect it, and lists read from sharded indexes (issue 18), through the
customers handler on moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api, Aws, table_items


def create(api: Api, **fields: Any) -> dict[str, Any]:
    return api.ok("POST", "/v1/customers", fields)  # type: ignore[no-any-return]


def names(page: dict[str, Any]) -> list[str]:
    return [f"{c.get('first_name')} {c.get('last_name')}" for c in page["items"]]


def word_items(aws: Aws, customer_id: str) -> list[dict[str, Any]]:
    return [i for i in table_items(aws) if i.get("entity") == "name_word" and i["customer_id"] == customer_id]


def all_pages(api: Api, query: dict[str, Any], limit: int) -> tuple[list[str], int]:
    """Every customer id of a list, following cursors; and how many pages it took."""
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        page = api.ok("GET", "/v1/customers", query={**query, "limit": limit, "cursor": cursor})
        pages += 1
        assert len(page["items"]) <= limit
        seen += [c["customer_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen, pages


def test_q_finds_the_start_of_any_word_first_or_last_ignoring_case_and_accents(api: Api) -> None:
    # Given customers whose names share word starts in different places
    create(api, email="a@example.com", first_name="Ann", last_name="Lee")
    create(api, email="b@example.com", first_name="Leela", last_name="Ørsted")
    create(api, email="c@example.com", first_name="Zoë", last_name="Ångström-Lee")
    create(api, email="d@example.com", first_name="Bob", last_name="Marsh")
    # When staff search for a last name
    found = api.ok("GET", "/v1/customers", query={"q": "lee"})
    # Then the first and last names that start with it come back, by the word found
    assert names(found) == ["Ann Lee", "Leela Ørsted"]
    # And case and accents do not matter, on either side
    assert names(api.ok("GET", "/v1/customers", query={"q": "ANGSTROM"})) == ["Zoë Ångström-Lee"]
    assert names(api.ok("GET", "/v1/customers", query={"q": "zoe"})) == ["Zoë Ångström-Lee"]
    assert names(api.ok("GET", "/v1/customers", query={"q": "Zoë"})) == ["Zoë Ångström-Lee"]
    # And a word in the middle of another is not a match
    assert api.ok("GET", "/v1/customers", query={"q": "arsh"})["items"] == []


def test_several_words_narrow_and_a_customer_is_listed_once(api: Api) -> None:
    # Given a customer two of whose words start alike, and others
    both = create(api, email="a@example.com", first_name="Ann", last_name="Anderson")["customer_id"]
    lee = create(api, email="b@example.com", first_name="Ann", last_name="Lee")["customer_id"]
    create(api, email="c@example.com", first_name="Lee", last_name="Smith")
    # When searching by the start they share
    found = [c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"q": "an"})["items"]]
    # Then each customer comes back once
    assert sorted(found) == sorted([both, lee])
    # And two words must start two different words of the name, in any order
    assert [c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"q": "lee ann"})["items"]] == [
        lee
    ]
    assert [c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"q": "ann l"})["items"]] == [lee]
    assert api.ok("GET", "/v1/customers", query={"q": "ann ann"})["items"] == []


def test_q_with_status_and_a_query_too_short_for_the_index(api: Api) -> None:
    # Given two customers named alike, one of them moved to pending
    kept = create(api, email="a@example.com", first_name="Ann", last_name="Lee")["customer_id"]
    gone = create(api, email="b@example.com", first_name="Anne", last_name="Lee")["customer_id"]
    api.ok("PUT", f"/v1/customers/{gone}/program-status", {"status": "pending", "reason": "asked"})
    # When searching by name within a program status
    imported = api.ok("GET", "/v1/customers", query={"q": "lee", "status": "imported"})["items"]
    pending = api.ok("GET", "/v1/customers", query={"q": "lee", "status": "pending"})["items"]
    # Then only that status's customers come back
    assert [c["customer_id"] for c in imported] == [kept]
    assert [c["customer_id"] for c in pending] == [gone]
    # And a query without a word of two letters cannot name an index partition: 422 on q
    short = api("GET", "/v1/customers", query={"q": "a"})
    assert short.status == 422 and short.body["error"]["details"]["fields"][0]["field"] == "q"


def test_email_and_phone_are_exact_and_normalised(api: Api) -> None:
    # Given customers with an e-mail and a phone
    ann = create(api, email="Ann@Example.com", phone="+44 20 7946 0958")["customer_id"]
    create(api, email="ann.lee@example.com", phone="+44 20 7946 0959")
    # Then the phone is found however it is typed, once normalised to E.164
    for typed in ("+442079460958", "0044 (20) 7946-0958", "+44 20 7946 0958"):
        found = api.ok("GET", "/v1/customers", query={"phone": typed})["items"]
        assert [c["customer_id"] for c in found] == [ann], typed
    # And an e-mail only exactly (case aside), never by prefix
    assert [
        c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"email": "ANN@example.com"})["items"]
    ] == [ann]
    assert api.ok("GET", "/v1/customers", query={"email": "ann@example.co"})["items"] == []
    assert api.ok("GET", "/v1/customers", query={"phone": "+442079460950"})["items"] == []
    assert api("GET", "/v1/customers", query={"phone": "call me"}).status == 400


@pytest.mark.parametrize(
    ("path", "query", "unknown"),
    [
        ("/v1/customers", {"q": "ann", "qq": "x"}, ["qq"]),
        ("/v1/customers", {"phone_number": "+442079460958"}, ["phone_number"]),
        ("/v1/customers", {"status": "active", "sort": "name", "order": "asc"}, ["order", "sort"]),
        ("/v1/customers/{cid}/history", {"limit": 2, "since": "2026-01-01"}, ["since"]),
        ("/v1/customers/{cid}", {"expand": "cards"}, ["expand"]),
        ("/v1/status-definitions", {"code": "vip"}, ["code"]),
    ],
)
def test_an_unknown_query_parameter_is_422_naming_it(
    api: Api, path: str, query: dict[str, Any], unknown: list[str]
) -> None:
    # Given a customer
    cid = create(api, email="a@example.com", first_name="Ann")["customer_id"]
    # When a route gets a query parameter it does not take
    response = api("GET", path.format(cid=cid), query=query)
    # Then it is a 422 naming each unknown parameter, never an answer that ignored it
    assert response.status == 422, response
    assert [f["field"] for f in response.body["error"]["details"]["fields"]] == unknown


def test_empty_filters_and_no_filter_are_refused(api: Api) -> None:
    create(api, email="a@example.com", first_name="Ann")
    # An empty phone no longer lists everyone
    assert api("GET", "/v1/customers", query={"phone": ""}).status == 422
    # And a list with no filter at all names what to give
    response = api("GET", "/v1/customers")
    assert (
        response.status == 422
        and "q, email, phone, status or status_code" in response.body["error"]["message"]
    )


def test_name_index_entries_follow_the_name_only(api: Api, aws: Aws) -> None:
    # Given a customer
    cid = create(api, email="a@example.com", first_name="Ann", last_name="Lee")["customer_id"]
    before = word_items(aws, cid)
    assert sorted(i["word"] for i in before) == ["ann", "lee"]
    # When a field other than the name changes
    api.ok("PATCH", f"/v1/customers/{cid}", {"attributes": {"tier": "x"}, "phone": "+4915112345678"})
    # Then the name index entries are the very same items (not rewritten)
    assert word_items(aws, cid) == before
    # When the last name changes
    api.ok("PATCH", f"/v1/customers/{cid}", {"last_name": "Berg"})
    # Then the old word no longer finds the customer and the new one does
    assert sorted(i["word"] for i in word_items(aws, cid)) == ["ann", "berg"]
    assert api.ok("GET", "/v1/customers", query={"q": "lee"})["items"] == []
    assert [c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"q": "berg"})["items"]] == [cid]
    # When the customer is excluded
    api.ok("POST", f"/v1/customers/{cid}/exclusion", {"reason": "asked"})
    # Then the name index holds nothing of them
    assert word_items(aws, cid) == []
    assert api.ok("GET", "/v1/customers", query={"q": "ann"})["items"] == []


def test_a_name_search_pages_in_order_with_no_duplicate_or_gap(api: Api) -> None:
    # Given eleven customers found by one word, a few of them twice over
    expected = []
    for i in range(11):
        last = "Lee-Leeds" if i % 4 == 0 else "Lee"
        expected.append(
            create(api, email=f"c{i}@example.com", first_name=f"N{i:02d}", last_name=last)["customer_id"]
        )
    # When listing them three at a time
    seen, pages = all_pages(api, {"q": "lee"}, 3)
    # Then every one comes back once
    assert sorted(seen) == sorted(expected) and len(seen) == 11
    assert pages >= 4


def test_program_status_lists_merge_their_shards_in_order_across_pages(api: Api, aws: Aws) -> None:
    # Given 45 customers (spread over the 16 shards of their program status)
    created = [create(api, email=f"c{i}@example.com")["customer_id"] for i in range(45)]
    shards = {i["GSI2PK"] for i in table_items(aws) if i.get("entity") == "customer"}
    assert len(shards) > 8
    # When listing by program status, 7 at a time
    for limit in (7, 100):
        seen, pages = all_pages(api, {"status": "imported"}, limit)
        # Then every customer comes back once, in the order they were created
        assert seen == created
        assert pages == -(-45 // limit)
    # And a cursor of one list is refused by another
    first = api.ok("GET", "/v1/customers", query={"status": "imported", "limit": 7})
    other = api("GET", "/v1/customers", query={"status": "active", "cursor": first["next_cursor"]})
    assert other.status == 400


def test_status_holder_lists_merge_their_shards_across_pages(api: Api) -> None:
    # Given a status held by 23 customers
    api.ok("POST", "/v1/status-definitions", {"code": "vip", "name": "VIP", "rank": 1}, role="admin")
    holders = [create(api, email=f"v{i}@example.com")["customer_id"] for i in range(23)]
    create(api, email="other@example.com")
    api.ok(
        "POST",
        "/v1/status-definitions/vip/assignments",
        {"action": "assign", "customer_ids": holders},
        role="admin",
    )
    # When listing the holders 5 at a time
    seen, _ = all_pages(api, {"status_code": "vip"}, 5)
    # Then each holder comes back once, by customer id
    assert seen == sorted(holders)
