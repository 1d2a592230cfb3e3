"""Customer routes through the real lambda_handler on moto (table built from template.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api, Aws, load_event, table_items


def create(api: Api, **fields: Any) -> dict[str, Any]:
    response = api("POST", "/v1/customers", fields)
    assert response.status == 201, response
    return response.body


def test_create_then_read_profile_and_history(api: Api) -> None:
    # Given a staff member / When they create a customer
    created = create(
        api, email=" Ann@Example.com ", first_name="Ann", last_name="Lee", attributes={"tier": "gold"}
    )
    # Then the customer is imported, normalised, at version 1
    assert created["program_status"] == "imported"
    assert created["email"] == "ann@example.com"
    assert created["version"] == 1
    assert created["statuses"] == [] and created["best_status"] is None and created["merged_into"] is None
    # And reading it back gives the same profile
    got = api.ok("GET", f"/v1/customers/{created['customer_id']}")
    assert got == {**created, "balance": 0}  # only a single read shows the points balance
    # And its history holds the import, with the actor and no personal data
    history = api.ok("GET", f"/v1/customers/{created['customer_id']}/history")
    assert [(e["event"], e["from_status"], e["to_status"]) for e in history["items"]] == [
        ("import", None, "imported")
    ]
    assert history["items"][0]["actor"] == {"sub": "staff-user", "role": "staff"}
    assert "ann" not in str(history).lower()


def test_sample_event_from_events_folder_creates_a_customer(aws: Aws) -> None:
    # Given the sample event shipped for `sam local invoke -e`
    from local.runtime import invoke

    event = load_event("customers/create_customer.json")
    # When the handler receives it
    result = invoke(aws.specs["CustomersFunction"], event)
    # Then it creates the customer
    assert result["statusCode"] == 201, result


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "program_status": "active"}, "program_status"),
        ({"email": "a@example.com", "version": 7}, "version"),
        ({"email": "a@example.com", "business_id": "other"}, "business_id"),
        ({"email": "a@example.com", "first_name": 42}, "first_name"),
        ({"email": "a@example.com", "attributes": {"bad key": 1}}, "attributes.bad key"),
        ({"phone": "abc"}, "phone"),
    ],
)
def test_bad_fields_are_422_naming_the_field_and_store_nothing(
    api: Api, aws: Aws, body: dict, field: str
) -> None:
    # When a create carries a bad or forbidden field
    response = api("POST", "/v1/customers", body)
    # Then it is refused with 422 naming the field
    assert response.status == 422, response
    assert field in [f["field"] for f in response.body["error"]["details"]["fields"]]
    # And nothing was stored
    assert table_items(aws) == []


def test_a_customer_needs_one_identifier(api: Api) -> None:
    response = api("POST", "/v1/customers", {"first_name": "Nobody"})
    assert response.status == 422
    assert "email, phone or external_id" in response.body["error"]["message"]


def test_malformed_json_is_400(api: Api) -> None:
    response = api(
        "POST", "/v1/customers", raw_body='{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status == 400
    assert response.body["error"]["code"] == "malformed_json"


def test_auth_and_roles(api: Api) -> None:
    # No token at all: 401
    assert api("GET", "/v1/customers", role=None).status == 401
    # A customer token cannot create or list customers: 403
    assert api("POST", "/v1/customers", {"email": "x@example.com"}, role="customer").status == 403
    assert api("GET", "/v1/customers", role="customer").status == 403


@pytest.mark.parametrize(
    "field,value", [("email", "dup@example.com"), ("phone", "+15550100"), ("external_id", "ext-1")]
)
def test_duplicates_are_409_naming_the_existing_customer(api: Api, aws: Aws, field: str, value: str) -> None:
    # Given a customer holding an identifier
    first = create(api, **{field: value})
    before = table_items(aws)
    # When another create uses the same identifier
    response = api("POST", "/v1/customers", {field: value, "first_name": "Other"})
    # Then it is a 409 duplicate naming the existing customer, and nothing changed
    assert response.status == 409, response
    assert response.body["error"]["code"] == "duplicate"
    assert response.body["error"]["details"] == {"field": field, "customer_id": first["customer_id"]}
    assert sorted(map(str, table_items(aws))) == sorted(map(str, before))


def test_same_identifier_in_another_business_is_allowed_and_invisible(api: Api) -> None:
    # Given the same e-mail in two businesses
    mine = create(api, email="shared@example.com")
    theirs = api.ok("POST", "/v1/customers", {"email": "shared@example.com"}, business="biz-2")
    # Then each business sees only its own customer; the other's id is a 404
    assert api("GET", f"/v1/customers/{theirs['customer_id']}").status == 404
    assert api("GET", f"/v1/customers/{mine['customer_id']}", business="biz-2").status == 404
    found = api.ok("GET", "/v1/customers", query={"email": "SHARED@example.com"})
    assert [c["customer_id"] for c in found["items"]] == [mine["customer_id"]]


def test_search_by_name_prefix_email_and_status_with_pagination(api: Api) -> None:
    # Given five customers
    names = [("Ann", "Lee"), ("anna", "Berg"), ("Bob", "Marsh"), ("Annika", "Stone"), ("Carl", "Ann")]
    ids = {
        f"{first} {last}": create(
            api, email=f"{first.lower()}{i}@example.com", first_name=first, last_name=last
        )["customer_id"]
        for i, (first, last) in enumerate(names)
    }
    # When searching by a name prefix, case-insensitively
    found = api.ok("GET", "/v1/customers", query={"q": "ANN"})
    # Then every name with a word starting so comes back, first or last, by the word found
    assert [c["first_name"] for c in found["items"]] == ["Ann", "Carl", "anna", "Annika"]
    # And a second word narrows it
    assert [c["customer_id"] for c in api.ok("GET", "/v1/customers", query={"q": "ann l"})["items"]] == [
        ids["Ann Lee"]
    ]
    # When listing by program status two at a time, following cursors
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = api.ok("GET", "/v1/customers", query={"status": "imported", "limit": 2, "cursor": cursor})
        assert len(page["items"]) <= 2
        seen += [c["customer_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Then every customer is listed exactly once
    assert sorted(seen) == sorted(ids.values())
    # And lists of another status are empty
    assert api.ok("GET", "/v1/customers", query={"status": "active"})["items"] == []


def test_bad_list_parameters_are_4xx(api: Api) -> None:
    assert api("GET", "/v1/customers", query={"status": "vip"}).status == 422
    assert api("GET", "/v1/customers", query={"limit": 0}).status == 422
    assert api("GET", "/v1/customers", query={"status": "active", "cursor": "garbage!!"}).status == 400
    response = api("GET", "/v1/customers", query={"q": "ann", "email": "ann@example.com"})
    assert response.status == 400 and "one filter" in response.body["error"]["message"]
    assert api("GET", "/v1/customers", query={"email": "nope"}).status == 400


def test_patch_edits_fields_merges_attributes_and_moves_lookups(api: Api) -> None:
    # Given a customer
    customer = create(api, email="old@example.com", first_name="Ann", attributes={"a": 1, "b": "x"})
    cid = customer["customer_id"]
    # When staff change the e-mail and attributes (null deletes a key)
    patched = api.ok(
        "PATCH",
        f"/v1/customers/{cid}",
        {"email": "new@example.com", "attributes": {"b": None, "c": True}, "expected_version": 1},
    )
    # Then the profile changed and its version grew
    assert patched["email"] == "new@example.com"
    assert patched["attributes"] == {"a": 1, "c": True}
    assert patched["version"] == 2
    # And the e-mail lookup moved: the old address finds nobody, the new one finds the customer
    assert api.ok("GET", "/v1/customers", query={"email": "old@example.com"})["items"] == []
    assert (
        api.ok("GET", "/v1/customers", query={"email": "new@example.com"})["items"][0]["customer_id"] == cid
    )
    # And the old address is free for someone else
    create(api, email="old@example.com")
    # And history names the changed fields, newest first, without their values
    events = api.ok("GET", f"/v1/customers/{cid}/history")["items"]
    assert [e["event"] for e in events] == ["update", "import"]
    assert events[0]["details"] == {"fields": ["attributes", "email"]}
    assert "new@example.com" not in str(events)


def test_patch_with_stale_version_or_taken_email_changes_nothing(api: Api) -> None:
    # Given two customers
    a = create(api, email="a@example.com")
    create(api, email="b@example.com")
    # When a patch carries a stale expected_version
    stale = api("PATCH", f"/v1/customers/{a['customer_id']}", {"first_name": "X", "expected_version": 9})
    # Then it is a version conflict naming the current version
    assert stale.status == 409 and stale.body["error"]["code"] == "version_conflict"
    assert stale.body["error"]["details"]["current_version"] == 1
    # When a patch takes another customer's e-mail
    taken = api("PATCH", f"/v1/customers/{a['customer_id']}", {"email": "b@example.com"})
    assert taken.status == 409 and taken.body["error"]["code"] == "duplicate"
    # Then the customer is unchanged
    assert api.ok("GET", f"/v1/customers/{a['customer_id']}") == {**a, "balance": 0}


def test_unknown_customer_is_404(api: Api) -> None:
    assert api("GET", "/v1/customers/does-not-exist").status == 404
    assert api("PATCH", "/v1/customers/does-not-exist", {"first_name": "X"}).status == 404
    assert api("GET", "/v1/customers/does-not-exist/history").status == 404


def test_customer_reads_only_their_own_profile(api: Api) -> None:
    me = create(api, email="me@example.com")
    other = create(api, email="other@example.com")
    assert (
        api.ok("GET", f"/v1/customers/{me['customer_id']}", role="customer", sub=me["customer_id"])["email"]
        == "me@example.com"
    )
    assert (
        api("GET", f"/v1/customers/{other['customer_id']}", role="customer", sub=me["customer_id"]).status
        == 404
    )


def test_history_paginates_newest_first(api: Api) -> None:
    cid = create(api, email="h@example.com")["customer_id"]
    for i in range(4):
        api.ok("PATCH", f"/v1/customers/{cid}", {"first_name": f"N{i}"})
    first = api.ok("GET", f"/v1/customers/{cid}/history", query={"limit": 3})
    second = api.ok("GET", f"/v1/customers/{cid}/history", query={"limit": 3, "cursor": first["next_cursor"]})
    versions = [e["version"] for e in first["items"] + second["items"]]
    assert versions == [5, 4, 3, 2, 1]


def test_idempotency_key_replays_the_first_answer(api: Api) -> None:
    # Given a create sent with an Idempotency-Key
    headers = {"Idempotency-Key": "create-1"}
    first = api("POST", "/v1/customers", {"email": "idem@example.com"}, headers=headers)
    # When the same request is retried
    again = api("POST", "/v1/customers", {"email": "idem@example.com"}, headers=headers)
    # Then the first answer comes back and no second customer exists
    assert first.status == again.status == 201
    assert again.body["customer_id"] == first.body["customer_id"]
    # And the same key with another body is refused
    other = api("POST", "/v1/customers", {"email": "else@example.com"}, headers=headers)
    assert other.status == 422 and other.body["error"]["code"] == "idempotency_key_reused"
