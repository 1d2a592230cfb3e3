"""Registration and card routes through the real lambda_handler on moto."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from loyalty.repository import keys
from tests.support import Api, Aws, load_event, luhn_valid, table_items
from tests.support.points import purchase


def snapshot(aws: Aws) -> list[str]:
    return sorted(map(str, table_items(aws)))


def pack(api: Api, *numbers: str) -> dict[str, Any]:
    return api.ok("POST", "/v1/card-batches", {"numbers": list(numbers)}, role="admin")


def earn_on_card(api: Api, number: str, points: int) -> None:
    """Points a packed card earned at a till before anyone registered it (1 point per unit)."""
    api.ok(
        "POST", f"/v1/cards/{number}/purchases", purchase(f"till-{number}-{points}", points), role="service"
    )


def history(api: Api, customer_id: str) -> list[dict[str, Any]]:
    return api.ok("GET", f"/v1/customers/{customer_id}/history")["items"]


def register(api: Api, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return api.ok("POST", "/v1/registrations", body, **kw)


# --- packing -------------------------------------------------------------------------


def test_pack_numbers_creates_cards_with_new_virtual_owners_and_refuses_duplicates(api: Api) -> None:
    # Given an admin packing three numbers, one of them twice
    report = pack(api, "1000001", "1000002", "1000002")
    # Then two cards are created, the repeat is reported per number
    assert (report["requested"], report["created"], report["failed"]) == (3, 2, 1)
    assert report["errors"] == [
        {"number": "1000002", "code": "duplicate", "message": "repeated in this request"}
    ]
    first = {c["number"]: c for c in report["cards"]}["1000001"]
    assert first["state"] == "issued"
    # And each card comes with the secret to print on it, stored only as a keyed digest
    secret = first.pop("secret")
    assert secret.isdigit() and len(secret) == 8
    assert secret not in str(table_items(api.aws))
    # And each card has its own `new` virtual owner listing it, with a pack_card audit event
    owner = api.ok("GET", f"/v1/customers/{first['customer_id']}")
    assert owner["program_status"] == "new"
    assert owner["cards"] == [{"number": "1000001", "state": "issued"}]
    assert [e["event"] for e in history(api, first["customer_id"])] == ["pack_card"]
    assert api.ok("GET", "/v1/cards/1000001") == {
        **first,
        "previous_state": None,
        "blocked_by": None,
        "replaced_by": None,
        "replaces": None,
        "version": 1,
        "created_at": owner["created_at"],
        "updated_at": owner["created_at"],
    }
    # When a second batch repeats an existing number
    again = pack(api, "1000001", "1000003")
    # Then only the new number is created and the existing one is reported
    assert [c["number"] for c in again["cards"]] == ["1000003"]
    assert [(e["number"], e["code"]) for e in again["errors"]] == [("1000001", "duplicate")]
    # And the existing card still has its first owner
    assert api.ok("GET", "/v1/cards/1000001")["customer_id"] == first["customer_id"]
    # And the virtual owners stay out of the name index but are listed by status
    assert not [i for i in table_items(api.aws) if i.get("entity") == "name_word"]
    assert len(api.ok("GET", "/v1/customers", query={"status": "new"})["items"]) == 3


def test_pack_a_generated_range_with_luhn_check_digits(api: Api) -> None:
    # When an admin packs 40 numbers from a prefix (more than one transaction's worth)
    report = api.ok(
        "POST", "/v1/card-batches", {"prefix": "2700", "start": 1, "count": 40, "luhn": True}, role="admin"
    )
    # Then every number is created, zero-padded, with a valid Luhn check digit
    numbers = [c["number"] for c in report["cards"]]
    assert report["created"] == 40 and len(set(numbers)) == 40
    assert all(n.startswith("2700") and len(n) == 4 + 2 + 1 and luhn_valid(n) for n in numbers)
    assert api.ok("GET", f"/v1/cards/{numbers[-1]}")["state"] == "issued"


def test_a_batch_of_only_duplicates_is_409_and_changes_nothing(api: Api, aws: Aws) -> None:
    # Given a packed card
    pack(api, "5550001")
    before = snapshot(aws)
    # When it is packed again
    response = api("POST", "/v1/card-batches", {"numbers": ["5550001"]}, role="admin")
    # Then nothing is created: 409 with the per-number reason
    assert response.status == 409, response
    assert response.body["error"]["details"]["errors"][0]["number"] == "5550001"
    assert snapshot(aws) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"numbers": ["12#4"]}, "numbers[0]"),
        ({"numbers": []}, "numbers"),
        ({"numbers": ["1234"], "start": 1, "count": 2}, "body"),
        ({"prefix": "27", "count": 2}, "body"),
        ({"start": 1, "count": 0}, "count"),
        ({"start": 1, "count": 10_001}, "count"),
        ({"numbers": ["1234"], "owner": "x"}, "owner"),
        ({"prefix": "AB", "start": 1, "count": 2, "luhn": True}, "body"),
    ],
)
def test_bad_batches_are_422_naming_the_field(api: Api, aws: Aws, body: dict[str, Any], field: str) -> None:
    # When a batch is malformed / Then it is refused naming the field, and nothing is stored
    response = api("POST", "/v1/card-batches", body, role="admin")
    assert response.status == 422, response
    assert any(f["field"].startswith(field) for f in response.body["error"]["details"]["fields"]), response
    assert table_items(aws) == []


def test_only_admins_pack_and_malformed_json_is_400(api: Api) -> None:
    assert api("POST", "/v1/card-batches", {"numbers": ["1234"]}, role="staff").status == 403
    assert api("POST", "/v1/card-batches", {"numbers": ["1234"]}, role="customer").status == 403
    bad = api(
        "POST", "/v1/card-batches", raw_body='{"numbers": [', headers={"content-type": "application/json"}
    )
    assert bad.status == 400


# --- registration --------------------------------------------------------------------


def test_registration_with_a_packed_card_merges_the_virtual_owner(api: Api) -> None:
    # Given a packed card whose virtual owner earned 120 points
    card = pack(api, "7000001")["cards"][0]
    virtual_id = card["customer_id"]
    earn_on_card(api, "7000001", 120)
    # When staff register a new customer at the counter with that card
    response = api(
        "POST",
        "/v1/registrations",
        {
            "email": "Reg@Example.com",
            "first_name": "Rita",
            "card_number": "7000001",
            "terms_version": "2025-01",
            "marketing_consent": True,
        },
    )
    # Then the customer is created active, holding the card and the moved balance
    assert response.status == 201, response
    customer = response.body
    assert customer["program_status"] == "active"
    assert customer["email"] == "reg@example.com" and customer["marketing_consent"] is True
    assert customer["cards"] == [{"number": "7000001", "state": "activated"}]
    assert api.ok("GET", f"/v1/customers/{customer['customer_id']}")["balance"] == 120
    assert customer["terms_version"] == "2025-01" and customer["terms_accepted_at"]
    # And the card is activated and owned by the customer
    got = api.ok("GET", "/v1/cards/7000001")
    assert (got["state"], got["customer_id"]) == ("activated", customer["customer_id"])
    # And the virtual owner is merged into the customer, stays readable, and lost its balance
    virtual = api.ok("GET", f"/v1/customers/{virtual_id}")
    assert virtual["program_status"] == "merged"
    assert virtual["merged_into"] == customer["customer_id"]
    assert (virtual["balance"], virtual["cards"]) == (0, [])
    # And both histories record it, without personal data
    merge = history(api, virtual_id)[0]
    assert (merge["event"], merge["from_status"], merge["to_status"]) == ("merge", "new", "merged")
    assert merge["details"]["points_moved"] == 120
    registered = history(api, customer["customer_id"])[0]
    assert registered["event"] == "register"
    assert registered["details"]["merged_customer_id"] == virtual_id
    assert "reg@example.com" not in str(registered) and "Rita" not in str(registered)


def test_registration_with_the_email_of_an_imported_customer_activates_it(api: Api) -> None:
    # Given an imported customer
    imported = api.ok("POST", "/v1/customers", {"email": "imp@example.com", "first_name": "Ivo"})
    # When they register with the same e-mail
    response = api("POST", "/v1/registrations", {"email": "IMP@example.com", "last_name": "Ng"})
    # Then that customer becomes active: same id, no duplicate, fields merged
    assert response.status == 200, response
    assert response.body["customer_id"] == imported["customer_id"]
    assert response.body["program_status"] == "active"
    assert (response.body["first_name"], response.body["last_name"]) == ("Ivo", "Ng")
    assert response.body["version"] == 2
    found = api.ok("GET", "/v1/customers", query={"email": "imp@example.com"})["items"]
    assert [c["customer_id"] for c in found] == [imported["customer_id"]]
    # And registering again is refused: an active customer cannot register twice
    again = api("POST", "/v1/registrations", {"email": "imp@example.com"})
    assert again.status == 409 and again.body["error"]["code"] == "duplicate"


def test_anonymous_app_user_signs_up_with_a_virtual_card_then_registers(api: Api) -> None:
    # Given an app user signing up anonymously with a virtual card
    signup = api(
        "POST",
        "/v1/anonymous-customers",
        {"device_id": "dev-1", "virtual_card": True},
        role="customer",
        sub="app-user-1",
    )
    assert signup.status == 201, signup
    anon = signup.body
    assert (anon["customer_id"], anon["program_status"]) == ("app-user-1", "anonymous")
    number = anon["cards"][0]["number"]
    assert anon["cards"][0]["state"] == "activated" and luhn_valid(number)
    # And they can read their own card
    assert (
        api.ok("GET", f"/v1/cards/{number}", role="customer", sub="app-user-1")["customer_id"] == "app-user-1"
    )
    # When they register themself, naming their virtual card
    registered = register(
        api, {"email": "app@example.com", "card_number": number}, role="customer", sub="app-user-1"
    )
    # Then the same profile becomes active and keeps its card
    assert (registered["customer_id"], registered["program_status"]) == ("app-user-1", "active")
    assert registered["cards"] == [{"number": number, "state": "activated"}]
    assert [e["event"] for e in history(api, "app-user-1")] == ["register", "anonymous_signup"]


def test_staff_register_a_named_anonymous_profile(api: Api) -> None:
    # Given an anonymous profile created by the app's backend service
    anon = api.ok("POST", "/v1/anonymous-customers", {"device_id": "dev-9"}, role="service")
    assert anon["cards"] == []
    # When staff register it by id
    registered = register(api, {"customer_id": anon["customer_id"], "phone": "+15550109"})
    # Then it is active
    assert (registered["customer_id"], registered["program_status"]) == (anon["customer_id"], "active")


def test_anonymous_signup_refusals(api: Api, aws: Aws) -> None:
    # Given a device already signed up
    api.ok("POST", "/v1/anonymous-customers", {"device_id": "dev-2"}, role="customer", sub="u1")
    before = snapshot(aws)
    # Then the same device cannot sign up again, nor the same customer twice
    dup = api("POST", "/v1/anonymous-customers", {"device_id": "dev-2"}, role="customer", sub="u2")
    assert dup.status == 409 and dup.body["error"]["details"]["field"] == "device_id"
    assert (
        api("POST", "/v1/anonymous-customers", {"device_id": "dev-3"}, role="customer", sub="u1").status
        == 409
    )
    # And staff cannot sign up app users; bad bodies are 422
    assert api("POST", "/v1/anonymous-customers", {"device_id": "dev-4"}).status == 403
    missing = api("POST", "/v1/anonymous-customers", {"email": "x@example.com"}, role="service")
    assert missing.status == 422 and missing.body["error"]["details"]["fields"][0]["field"] == "device_id"
    assert snapshot(aws) == before


def test_card_binding_refusals_are_409_or_404_and_change_nothing(api: Api, aws: Aws) -> None:
    # Given a card held by a registered customer, a blocked card and a replaced (deleted) card
    pack(api, "8000001", "8000002", "8000003", "8000004")
    owner = register(api, {"email": "own@example.com", "card_number": "8000001"})
    api.ok("PATCH", "/v1/cards/8000002", {"blocked": True})
    api.ok(
        "POST",
        f"/v1/customers/{owner['customer_id']}/cards/8000001/replacement",
        {"new_card_number": "8000003"},
    )
    before = snapshot(aws)
    cases = [
        ("8000003", 409, "card_taken"),  # another real customer's card
        ("8000002", 409, "illegal_card_state"),  # blocked
        ("8000001", 409, "illegal_card_state"),  # deleted by the replacement
        ("9999999", 404, "not_found"),  # unknown
    ]
    for number, status, code in cases:
        # When someone registers with that card
        response = api(
            "POST", "/v1/registrations", {"email": f"x{number}@example.com", "card_number": number}
        )
        # Then it is refused with the reason
        assert (response.status, response.body["error"]["code"]) == (status, code), (number, response)
    # And nothing changed
    assert snapshot(aws) == before


def test_registration_refusals(api: Api, aws: Aws) -> None:
    # Given an active customer in business 1 and an imported one in business 2
    active = register(api, {"email": "act@example.com"})
    other = api.ok("POST", "/v1/customers", {"email": "o@example.com"}, business="biz-2")
    before = snapshot(aws)
    # Then registering an active customer by id is an illegal transition
    response = api("POST", "/v1/registrations", {"customer_id": active["customer_id"], "phone": "+15550111"})
    assert (response.status, response.body["error"]["code"]) == (409, "illegal_transition")
    # And another business's id is unknown; a customer cannot register someone else
    assert (
        api(
            "POST", "/v1/registrations", {"customer_id": other["customer_id"], "email": "n@example.com"}
        ).status
        == 404
    )
    assert (
        api(
            "POST", "/v1/registrations", {"customer_id": "someone", "email": "n@example.com"}, role="customer"
        ).status
        == 404
    )
    # And bad bodies are 422 naming the field
    for body, field in [
        ({"email": "nope"}, "email"),
        ({"email": "a@example.com", "program_status": "active"}, "program_status"),
        ({"email": "a@example.com", "card_number": "12#45"}, "card_number"),
        ({"first_name": "No Contact"}, "body"),
    ]:
        bad = api("POST", "/v1/registrations", body)
        assert bad.status == 422, (body, bad)
        assert bad.body["error"]["details"]["fields"][0]["field"] == field
    assert snapshot(aws) == before


def test_registration_lifts_the_suppression_of_an_excluded_person(api: Api, aws: Aws) -> None:
    # Given a suppression item for an e-mail (the person once asked to be excluded)

    key = keys.suppression_key_of("biz-1", "email", "gone@example.com")
    client = boto3.client("dynamodb")
    client.put_item(TableName=aws.table_name, Item={k: {"S": v} for k, v in key.items()})
    # And staff cannot re-create them
    assert api("POST", "/v1/customers", {"email": "gone@example.com"}).body["error"]["code"] == "suppressed"
    # And nobody can lift it by merely typing the address in the app
    unproven = api(
        "POST", "/v1/registrations", {"email": "gone@example.com"}, role="customer", sub="imposter"
    )
    assert (unproven.status, unproven.body["error"]["code"]) == (409, "suppressed")
    assert "customer_id" not in unproven.body["error"]["details"]
    # When the person registers themself, their identity provider vouching for the address
    proof = {"email": "gone@example.com", "email_verified": True}
    registered = register(
        api, {"email": "gone@example.com"}, role="customer", sub="back-again", claims_extra=proof
    )
    # Then they are active and the suppression is gone
    assert registered["program_status"] == "active"
    gone = client.get_item(TableName=aws.table_name, Key={k: {"S": v} for k, v in key.items()})
    assert "Item" not in gone


def test_two_registrations_racing_for_one_card_one_wins(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a packed card with a balance on its virtual owner
    from loyalty.domain.errors import Conflict
    from loyalty.domain.principal import Principal, Role
    from loyalty.repository import cards as card_repo
    from loyalty.schemas.cards import CardBatch
    from loyalty.schemas.registration import Registration
    from loyalty.services import cards, registration

    admin = Principal("admin-1", "biz-1", Role.ADMIN)
    cards.pack_cards(admin, CardBatch(numbers=["6100001"]))
    earn_on_card(Api(aws), "6100001", 50)
    # And both requests read the card before either writes (forced by a barrier)
    barrier = threading.Barrier(2, timeout=10)
    read = card_repo.get_card

    def get_card_then_wait(business_id: str, number: str, consistent: bool = True) -> dict[str, Any] | None:
        card = read(business_id, number, consistent)
        barrier.wait()
        return card

    monkeypatch.setattr(card_repo, "get_card", get_card_then_wait)
    outcomes: dict[str, Any] = {}

    def attempt(email: str) -> None:
        staff = Principal("staff-1", "biz-1", Role.STAFF)
        try:
            body = Registration(email=email, card_number="6100001")
            outcomes[email] = registration.register(staff, body).customer
        except Conflict as exc:
            outcomes[email] = exc

    # When two registrations for different people race for the card
    threads = [threading.Thread(target=attempt, args=(f"r{i}@example.com",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.setattr(card_repo, "get_card", read)
    # Then exactly one wins and the other gets a conflict naming the card race
    winners = [o for o in outcomes.values() if not isinstance(o, Exception)]
    losers = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].code == "card_taken"
    # And the card, the balance and the merge happened once, for the winner
    card = card_repo.get_card("biz-1", "6100001")
    assert card is not None and card["customer_id"] == winners[0].customer_id
    assert Api(aws).ok("GET", f"/v1/customers/{winners[0].customer_id}")["balance"] == 50
    items = table_items(aws)
    merges = [i for i in items if i.get("entity") == "audit_event" and i["event"] == "merge"]
    assert len(merges) == 1
    # And the loser left no profile behind
    assert len([i for i in items if i.get("entity") == "customer" and i["program_status"] == "active"]) == 1


# --- attach, replace, block ----------------------------------------------------------


def test_attach_a_card_after_registration_and_hold_several(api: Api) -> None:
    # Given a registered customer with one card, and another packed card with a balance
    secrets = {c["number"]: c["secret"] for c in pack(api, "3000001", "3000002")["cards"]}
    customer = register(api, {"email": "two@example.com", "card_number": "3000001"})
    cid = customer["customer_id"]
    virtual_id = api.ok("GET", "/v1/cards/3000002")["customer_id"]
    earn_on_card(api, "3000002", 7)
    # When the customer attaches the second card themself
    attached = api.ok(
        "POST",
        f"/v1/customers/{cid}/cards",
        {"card_number": "3000002", "card_secret": secrets["3000002"]},
        role="customer",
        sub=cid,
    )
    # Then they hold both cards, the balance moved and the virtual owner is merged
    assert attached["cards"] == [
        {"number": "3000001", "state": "activated"},
        {"number": "3000002", "state": "activated"},
    ]
    assert api.ok("GET", f"/v1/customers/{cid}")["balance"] == 7
    assert api.ok("GET", f"/v1/customers/{virtual_id}")["merged_into"] == cid
    assert history(api, cid)[0]["event"] == "card_attached"


def test_attach_refusals(api: Api, aws: Aws) -> None:
    # Given a registered customer, a packed card and a packed (new) virtual owner
    pack(api, "3100001", "3100002")
    customer = register(api, {"email": "att@example.com"})
    cid = customer["customer_id"]
    virtual_id = api.ok("GET", "/v1/cards/3100002")["customer_id"]
    before = snapshot(aws)
    # Then attaching to unknown or foreign customers, or an unknown card, is a 404
    assert api("POST", "/v1/customers/nobody/cards", {"card_number": "3100001"}).status == 404
    assert (
        api("POST", f"/v1/customers/{cid}/cards", {"card_number": "3100001"}, business="biz-2").status == 404
    )
    assert (
        api("POST", f"/v1/customers/{cid}/cards", {"card_number": "3100001"}, role="customer").status == 404
    )
    assert api("POST", f"/v1/customers/{cid}/cards", {"card_number": "0000000"}).status == 404
    # And a virtual owner cannot take another card; a bad body is 422
    assert api("POST", f"/v1/customers/{virtual_id}/cards", {"card_number": "3100001"}).status == 409
    assert api("POST", f"/v1/customers/{cid}/cards", {"number": "3100001"}).status == 422
    assert snapshot(aws) == before


def test_replace_a_card_keeps_the_chain_and_merges_the_new_cards_owner(api: Api) -> None:
    # Given a customer holding card A, and a packed card B
    pack(api, "4000001", "4000002")
    cid = register(api, {"email": "rep@example.com", "card_number": "4000001"})["customer_id"]
    virtual_b = api.ok("GET", "/v1/cards/4000002")["customer_id"]
    # When staff replace A with B
    replaced = api.ok(
        "POST", f"/v1/customers/{cid}/cards/4000001/replacement", {"new_card_number": "4000002"}
    )
    # Then A is deleted naming B, B is activated naming A, and the profile lists both
    assert replaced["cards"] == [
        {"number": "4000001", "state": "deleted"},
        {"number": "4000002", "state": "activated"},
    ]
    old, new = api.ok("GET", "/v1/cards/4000001"), api.ok("GET", "/v1/cards/4000002")
    assert (old["state"], old["replaced_by"]) == ("deleted", "4000002")
    assert (new["state"], new["replaces"], new["customer_id"]) == ("activated", "4000001", cid)
    # And B's virtual owner is merged into the customer
    assert api.ok("GET", f"/v1/customers/{virtual_b}")["program_status"] == "merged"
    assert history(api, cid)[0]["details"]["replaced_card_number"] == "4000001"


def test_replace_refusals_change_nothing(api: Api, aws: Aws) -> None:
    # Given two customers with a card each, and a blocked packed card
    pack(api, "4100001", "4100002", "4100003")
    a = register(api, {"email": "a@example.com", "card_number": "4100001"})["customer_id"]
    register(api, {"email": "b@example.com", "card_number": "4100002"})
    api.ok("PATCH", "/v1/cards/4100003", {"blocked": True})
    before = snapshot(aws)
    url = f"/v1/customers/{a}/cards"
    # Then replacing someone else's card is a 404, and binding a blocked or taken card a 409
    assert api("POST", f"{url}/4100002/replacement", {"new_card_number": "4100003"}).status == 404
    assert api("POST", f"{url}/4100001/replacement", {"new_card_number": "4100003"}).status == 409
    assert api("POST", f"{url}/4100001/replacement", {"new_card_number": "4100002"}).status == 409
    assert api("POST", f"{url}/4100001/replacement", {"new_card_number": "4100001"}).status == 422
    assert api("POST", f"{url}/4100001/replacement", {"new_card_number": "4199999"}).status == 404
    assert snapshot(aws) == before


def test_block_and_unblock_restore_the_previous_state(api: Api) -> None:
    # Given a packed card and a customer's activated card
    pack(api, "2000001", "2000002")
    cid = register(api, {"email": "blk@example.com", "card_number": "2000001"})["customer_id"]
    for number, state, owner in (("2000001", "activated", cid), ("2000002", "issued", None)):
        owner = owner or api.ok("GET", f"/v1/cards/{number}")["customer_id"]
        # When staff block it
        blocked = api.ok("PATCH", f"/v1/cards/{number}", {"blocked": True})
        # Then it is blocked, remembering its state; the owner's profile lists it blocked
        assert (blocked["state"], blocked["previous_state"]) == ("blocked", state)
        assert {"number": number, "state": "blocked"} in api.ok("GET", f"/v1/customers/{owner}")["cards"]
        # And blocking again is refused
        assert api("PATCH", f"/v1/cards/{number}", {"blocked": True}).status == 409
        # When unblocked / Then the previous state is back, on the card and the profile
        unblocked = api.ok("PATCH", f"/v1/cards/{number}", {"blocked": False})
        assert (unblocked["state"], unblocked["previous_state"]) == (state, None)
        assert {"number": number, "state": state} in api.ok("GET", f"/v1/customers/{owner}")["cards"]
        # And the owner's history records both changes
        assert [e["event"] for e in history(api, owner)[:2]] == ["card_unblocked", "card_blocked"]
    # And unblocking a card that is not blocked is refused
    assert api("PATCH", "/v1/cards/2000001", {"blocked": False}).status == 409


def test_card_read_and_patch_refusals(api: Api, aws: Aws) -> None:
    # Given a packed card
    pack(api, "2100001")
    before = snapshot(aws)
    # Then unknown cards, other businesses and other customers get 404
    assert api("GET", "/v1/cards/2109999").status == 404
    assert api("GET", "/v1/cards/2100001", business="biz-2").status == 404
    assert api("GET", "/v1/cards/2100001", role="customer").status == 404
    assert api("PATCH", "/v1/cards/2100001", {"blocked": True}, role="customer").status == 404
    assert api("GET", "/v1/cards/21#1").status in (404, 422)
    # And bad bodies are 422
    assert api("PATCH", "/v1/cards/2100001", {"blocked": "maybe"}).status == 422
    assert api("PATCH", "/v1/cards/2100001", {}).status == 422
    assert snapshot(aws) == before


def test_sample_event_registers_a_customer(aws: Aws) -> None:
    # Given the sample event shipped for `sam local invoke -e`
    from local.runtime import invoke

    event = load_event("registration/register.json")
    # When the handler receives it / Then a customer is registered
    result = invoke(aws.specs["RegistrationFunction"], event)
    assert result["statusCode"] == 201, result
