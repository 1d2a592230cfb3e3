"""The security probes of docs/design.md#trust-and-identity, tried over real HTTP on the local
stack as an attacker would: each must be refused with a clear 4xx, storing and changing
nothing; none may be a 500.

Every test works in a business of its own, so the probes cannot see each other's data.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import jwt
import pytest
import requests

from local.stack import LocalStack
from local.token import make_token

pytestmark = [pytest.mark.local, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]


class Client:
    """One business on the stack: calls as a role, answers as (status, body)."""

    def __init__(self, stack: LocalStack, business: str | None = None) -> None:
        self.stack = stack
        self.business = business or f"atk-{uuid.uuid4().hex[:10]}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        role: str = "staff",
        sub: str | None = None,
        claims: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: str | bytes | None = None,
        token: str | None = None,
    ) -> requests.Response:
        bearer = token or make_token(self.business, role, sub, **(claims or {}))
        sent = {"Authorization": f"Bearer {bearer}", **(headers or {})}
        if raw is not None:
            sent.setdefault("content-type", "application/json")
            return requests.request(method, self.stack.url(path), data=raw, headers=sent, timeout=60)
        return requests.request(method, self.stack.url(path), json=body, headers=sent, timeout=60)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = self.call(method, path, body, **kw)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def refused(self, method: str, path: str, body: Any = None, *, status: int, code: str, **kw: Any) -> Any:
        answer = self.call(method, path, body, **kw)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
        return answer.json()["error"]

    def customer(self, cid: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/customers/{cid}"))


def get(client: Client, path: str, **params: str) -> requests.Response:
    token = make_token(client.business, "staff")
    return requests.get(
        client.stack.url(path), params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture
def shop(local_stack: LocalStack) -> Client:
    return Client(local_stack)


def victim(shop: Client, email: str = "victim@example.com", **fields: Any) -> dict[str, Any]:
    """A real member the business imported (with their CRM id)."""
    return dict(shop.ok("POST", "/v1/customers", {"email": email, "first_name": "Vic", **fields}))


# --- broken authentication / account linking -------------------------------------------


def test_a_stranger_cannot_take_over_a_profile_by_typing_its_email(shop: Client) -> None:
    # Given an imported member
    member = victim(shop, phone="+15550101001", external_id="CRM-1")
    # When someone with a fresh app account registers with the member's e-mail, no proof
    error = shop.refused(
        "POST",
        "/v1/registrations",
        {"email": "victim@example.com", "phone": "+15550109999", "first_name": "Mallory"},
        role="customer",
        sub="mallory",
        status=409,
        code="duplicate",
    )
    # Then the answer names the field only: not whose, not in what state
    assert error["details"] == {"field": "email"}
    assert member["customer_id"] not in json.dumps(error) and "imported" not in json.dumps(error)
    # And the member is untouched (still imported, their phone, no registration)
    after = shop.customer(member["customer_id"])
    assert (after["program_status"], after["phone"], after["version"]) == ("imported", "+15550101001", 1)


def test_with_a_verified_email_the_owner_takes_over_their_profile(shop: Client) -> None:
    member = victim(shop, email="owner@example.com")
    # When the member registers in the app, their identity provider vouching for the address
    proof = {"email": "owner@example.com", "email_verified": True}
    registered = shop.ok(
        "POST",
        "/v1/registrations",
        {"email": "owner@example.com"},
        role="customer",
        sub="owner",
        claims=proof,
    )
    # Then it is their imported profile that becomes active
    assert registered["customer_id"] == member["customer_id"]
    assert registered["program_status"] == "active"


def test_a_customer_cannot_set_an_external_id_nor_poison_the_next_import(shop: Client) -> None:
    # When a customer declares a CRM id at registration
    shop.refused(
        "POST",
        "/v1/registrations",
        {"email": "m1@example.com", "external_id": "CRM-42"},
        role="customer",
        sub="m1",
        status=422,
        code="validation_error",
    )
    # And registers with a phone that is not theirs (self-declared, nothing proves it)
    own = shop.ok(
        "POST",
        "/v1/registrations",
        {"email": "m1@example.com", "phone": "+15550102002"},
        role="customer",
        sub="m1",
    )
    # When the business imports the real member carrying that phone
    report = shop.ok(
        "POST",
        "/v1/imports",
        {"customers": [{"email": "real@example.com", "phone": "+15550102002", "first_name": "Real"}]},
        role="admin",
    )
    # Then the row is refused as a conflict to resolve by hand, naming the field
    assert (report["created"], report["updated"], report["failed"]) == (0, 0, 1)
    assert report["errors"][0]["field"] == "phone"
    # And the self-declared profile did not receive the real member's data
    mine = shop.customer(own["customer_id"])
    assert mine["email"] == "m1@example.com" and mine["first_name"] is None


def test_registering_an_excluded_persons_email_does_not_lift_their_suppression(shop: Client) -> None:
    # Given a member who asked to be excluded
    member = victim(shop, email="gone@example.com")
    shop.ok("POST", f"/v1/customers/{member['customer_id']}/exclusion", {})
    # When someone registers the address without proof
    shop.refused(
        "POST",
        "/v1/registrations",
        {"email": "gone@example.com"},
        role="customer",
        sub="x1",
        status=409,
        code="suppressed",
    )
    # Then the suppression holds: the next import still keeps the person out
    report = shop.ok("POST", "/v1/imports", {"customers": [{"email": "gone@example.com"}]}, role="admin")
    assert report["suppressed"] == 1


def test_a_packed_card_is_bound_only_with_its_secret_and_locks_after_guessing(shop: Client) -> None:
    # Given packed cards (sequential numbers) and a registered customer
    packed = shop.ok("POST", "/v1/card-batches", {"prefix": "7700", "start": 1, "count": 2}, role="admin")
    first, second = packed["cards"]
    me = shop.ok("POST", "/v1/registrations", {"email": "c1@example.com"}, role="customer", sub="c1")
    path = f"/v1/customers/{me['customer_id']}/cards"
    # When the customer binds a card by its number alone, or guesses its secret
    shop.refused(
        "POST",
        path,
        {"card_number": first["number"]},
        role="customer",
        sub="c1",
        status=403,
        code="card_secret_invalid",
    )
    for _ in range(5):
        shop.refused(
            "POST",
            path,
            {"card_number": first["number"], "card_secret": "00000000"},
            role="customer",
            sub="c1",
            status=403,
            code="card_secret_invalid",
        )
    # Then the card locks, even for the right secret, and stays with its virtual owner
    shop.refused(
        "POST",
        path,
        {"card_number": first["number"], "card_secret": first["secret"]},
        role="customer",
        sub="c1",
        status=403,
        code="card_locked",
    )
    assert shop.ok("GET", f"/v1/cards/{first['number']}")["state"] == "issued"
    # And with the printed secret another card binds
    bound = shop.ok(
        "POST",
        path,
        {"card_number": second["number"], "card_secret": second["secret"]},
        role="customer",
        sub="c1",
    )
    assert {"number": second["number"], "state": "activated"} in bound["cards"]


def test_a_customer_cannot_lift_a_staff_block(shop: Client) -> None:
    packed = shop.ok("POST", "/v1/card-batches", {"numbers": ["88000001"]}, role="admin")
    card = packed["cards"][0]
    me = shop.ok(
        "POST",
        "/v1/registrations",
        {"email": "c2@example.com", "card_number": card["number"], "card_secret": card["secret"]},
        role="customer",
        sub="c2",
    )
    assert me["cards"] == [{"number": card["number"], "state": "activated"}]
    # Given staff blocked the card
    shop.ok("PATCH", f"/v1/cards/{card['number']}", {"blocked": True})
    # When its holder unblocks it / Then refused, still blocked
    shop.refused(
        "PATCH",
        f"/v1/cards/{card['number']}",
        {"blocked": False},
        role="customer",
        sub="c2",
        status=403,
        code="forbidden",
    )
    assert shop.ok("GET", f"/v1/cards/{card['number']}")["state"] == "blocked"
    # But a card they blocked themselves (lost, then found) they may unblock
    shop.ok("PATCH", f"/v1/cards/{card['number']}", {"blocked": False})
    shop.ok("PATCH", f"/v1/cards/{card['number']}", {"blocked": True}, role="customer", sub="c2")
    assert (
        shop.ok("PATCH", f"/v1/cards/{card['number']}", {"blocked": False}, role="customer", sub="c2")[
            "state"
        ]
        == "activated"
    )


# --- tenant isolation through key separators ----------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"business_id": "acme#C#evil"},
        {"sub": "evil#C#victim1", "role": "customer"},
        {"business_id": 42},
        {"sub": ["a", "b"]},
        {"business_id": {"id": "acme"}},
        {"sub": "x" * 5000},
    ],
    ids=["business-with-separator", "sub-with-separator", "int", "list", "object", "huge"],
)
def test_claims_that_could_reach_another_tenants_keys_are_401(local_stack: LocalStack, claims: dict) -> None:
    token = jwt.encode(
        {"sub": "s1", "business_id": "acme", "role": "admin", "exp": 2_000_000_000, **claims},
        "local-dev-secret",
        "HS256",
    )
    shop = Client(local_stack, "acme")
    answer = shop.call("GET", "/v1/customers", token=token)
    assert answer.status_code == 401, answer.text


def test_a_token_without_expiry_is_401(shop: Client) -> None:
    token = make_token(shop.business, "admin", ttl=None)
    assert shop.call("GET", "/v1/customers", token=token).status_code == 401


@pytest.mark.parametrize("bad_id", ["a%23C%23b", "x" * 200, "a%20b"])
def test_ids_in_paths_are_refused_before_any_key_is_built(shop: Client, bad_id: str) -> None:
    answer = shop.call("GET", f"/v1/customers/{bad_id}")
    # 422 naming the parameter, or 404 when no route takes it (Powertools' routes refuse '#')
    assert answer.status_code in (404, 422), answer.text
    assert answer.status_code == 404 or "customer_id" in answer.text, answer.text


# --- excessive data exposure ----------------------------------------------------------------


def test_a_customer_sees_only_customer_facing_history(shop: Client) -> None:
    # Given a customer, a hidden ranked status and a staff note about them
    shop.ok(
        "POST",
        "/v1/status-definitions",
        {"code": "watchlist", "name": "Watch", "customer_facing": False},
        role="admin",
    )
    me = shop.ok("POST", "/v1/registrations", {"email": "h1@example.com"}, role="customer", sub="h1")
    shop.ok(
        "PUT",
        f"/v1/customers/{me['customer_id']}/statuses/watchlist",
        {"reason": "fraud suspicion"},
        sub="staff-jane",
    )
    # When the customer reads their history
    seen = json.dumps(shop.ok("GET", f"/v1/customers/{me['customer_id']}/history", role="customer", sub="h1"))
    # Then no staff id, no staff reason, no hidden status appears
    for secret in ("staff-jane", "fraud suspicion", "watchlist"):
        assert secret not in seen
    # While staff see all of it
    assert "fraud suspicion" in json.dumps(shop.ok("GET", f"/v1/customers/{me['customer_id']}/history"))


def test_cursors_carry_no_names_and_forged_ones_are_400(shop: Client) -> None:
    for i in range(3):
        shop.ok(
            "POST",
            "/v1/customers",
            {"email": f"zed{i}@example.com", "first_name": "Zedekiah", "last_name": f"Q{i}"},
        )
    page = get(shop, "/v1/customers", q="zedekiah", limit="1").json()
    cursor = page["next_cursor"]
    assert cursor and "zedekiah" not in cursor.lower()
    for forged in (cursor[:-4] + "AAAA", "eyJQSyI6eyJTIjoiQiMifX0", "!!", "a" * 300, "[]"):
        answer = get(shop, "/v1/customers", q="zedekiah", cursor=forged)
        assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == "cursor", (
            answer.text
        )


# --- erasure ----------------------------------------------------------------------------------


def test_exclusion_erases_notes_that_name_the_person_however_written(shop: Client) -> None:
    member = victim(shop, email="e1@example.com", phone="+15550103003")
    cid = member["customer_id"]
    shop.ok(
        "PUT",
        f"/v1/customers/{cid}/program-status",
        {"status": "pending", "reason": "called on (555) 010-3003, insta @vic_the_member"},
    )
    # An answer stored for an Idempotency-Key that quotes the e-mail but not the id
    shop.ok(
        "POST",
        "/v1/imports",
        {"customers": [{"email": "e1@example.com", "first_name": "Vicky"}]},
        role="admin",
        headers={"Idempotency-Key": "quote-me"},
    )
    # When the member is excluded
    shop.ok("POST", f"/v1/customers/{cid}/exclusion", {})
    # Then the note is gone from the history (codes kept)
    events = shop.ok("GET", f"/v1/customers/{cid}/history")["items"]
    assert "vic_the_member" not in json.dumps(events) and "010-3003" not in json.dumps(events)
    # And nothing anywhere in the table still holds the e-mail (stored answers included)
    table = shop.stack.resources()["refs"]["LoyaltyTable"]
    dump = json.dumps(shop.stack.client("dynamodb").scan(TableName=table)["Items"])
    assert "e1@example.com" not in dump and "vic_the_member" not in dump


def test_an_uploaded_file_is_deleted_once_its_import_ends(shop: Client) -> None:
    ticket = shop.ok("POST", "/v1/imports/uploads", {"filename": "c.csv"}, role="admin")
    put = requests.put(ticket["upload_url"], data=b"email\nup1@example.com\n", timeout=30)
    assert put.status_code == 200
    shop.stack.wait_idle(60)
    assert shop.ok("GET", f"/v1/imports/{ticket['import_id']}")["state"] == "completed"
    bucket = shop.stack.resources()["refs"]["ImportBucket"]
    listed = shop.stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"uploads/{shop.business}/")
    assert listed.get("KeyCount", 0) == 0


# --- one canonical form per identifier ---------------------------------------------------------


# Written with escapes: the characters themselves look like ASCII in an editor.
FULL_WIDTH_EMAIL = "\uff21\uff2e\uff2e@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com"  # ANN@EXAMPLE.com
FULL_WIDTH_PHONE = "\uff0b\uff11\uff15\uff15\uff15\uff10\uff11\uff10\uff14\uff10\uff10\uff14"  # +15550104004
ARABIC_INDIC_PHONE = "+\u0661\u0665\u0665\u0665\u0660\u0661\u0660\u0664\u0660\u0660\u0664"  # +15550104004


def test_full_width_and_foreign_digit_identifiers_are_the_same_person(shop: Client) -> None:
    first = shop.ok("POST", "/v1/customers", {"email": "ann@example.com", "phone": "+15550104004"})
    for clash in (
        {"email": FULL_WIDTH_EMAIL},
        {"phone": FULL_WIDTH_PHONE},
        {"phone": ARABIC_INDIC_PHONE},
    ):
        error = shop.refused("POST", "/v1/customers", clash, status=409, code="duplicate")
        assert error["details"]["customer_id"] == first["customer_id"]
    # And the suppression of an excluded person matches whatever digits are typed
    shop.ok("POST", f"/v1/customers/{first['customer_id']}/exclusion", {})
    shop.refused("POST", "/v1/customers", {"phone": FULL_WIDTH_PHONE}, status=409, code="suppressed")


# --- unrestricted resource consumption ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ('{"email": "a@example.com", "attributes": ' + "[" * 5000 + "]" * 5000 + "}", 400),
        ('{"email": "a@example.com", "attributes": {"x": NaN}}', 422),
        ('{"email": "a@example.com", "attributes": {"x": Infinity}}', 422),
        ('{"email": "a@example.com", "attributes": {"x": ' + "9" * 5000 + "}}", 422),
        ('{"email": "a@example.com", "attributes": {"x": "' + "y" * 300_000 + '"}}', 422),
        ('{"email": "a@example.com", "attributes": {"x": 1e999}}', 422),
    ],
    ids=["deep", "nan", "infinity", "huge-int", "huge-attribute", "overflow-float"],
)
def test_hostile_json_is_a_4xx_and_stores_nothing(shop: Client, raw: str, status: int) -> None:
    answer = shop.call("POST", "/v1/customers", raw=raw)
    assert answer.status_code == status, answer.text[:300]
    assert get(shop, "/v1/customers", status="imported").json()["items"] == []


def test_a_json_import_with_a_huge_row_fails_that_row_and_finishes(shop: Client) -> None:
    rows = [{"email": "ok@example.com"}, {"email": "big@example.com", "attributes": {"notes": "z" * 500_000}}]
    report = shop.ok("POST", "/v1/imports", {"customers": rows}, role="admin")
    assert (report["state"], report["created"], report["failed"]) == ("completed", 1, 1)
    assert report["errors"][0]["row"] == 2


def test_a_csv_whose_quoted_record_never_ends_fails_the_file_with_a_reason(shop: Client) -> None:
    body = io.StringIO()
    csv.writer(body).writerow(["email", "first_name"])
    body.write('a@example.com,"' + "x\n" * 100_000)  # one record spanning 100,000 short lines
    ticket = shop.ok("POST", "/v1/imports/uploads", {"filename": "evil.csv"}, role="admin")
    assert requests.put(ticket["upload_url"], data=body.getvalue().encode(), timeout=60).status_code == 200
    shop.stack.wait_idle(120)
    report = shop.ok("GET", f"/v1/imports/{ticket['import_id']}")
    assert report["state"] == "failed" and "longer than" in report["message"]


# --- other ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 around 169.254.169.254
        "https://[2001:0:4136:e378:8000:63bf:5601:5601]/hook",  # Teredo
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64
        "https://[::a9fe:a9fe]/hook",  # IPv4-compatible
    ],
)
def test_metadata_addresses_wrapped_in_ipv6_are_refused(shop: Client, url: str) -> None:
    error = shop.refused(
        "POST",
        "/v1/webhooks",
        {"url": url, "events": ["*"]},
        role="admin",
        status=422,
        code="validation_error",
    )
    assert error["details"]["fields"][0]["field"] == "url"


def test_a_webhook_cannot_call_back_into_the_local_stack(shop: Client) -> None:
    for base in (shop.stack.base_url, shop.stack.moto_endpoint):
        error = shop.refused(
            "POST",
            "/v1/webhooks",
            {"url": f"{base}/_local/idle", "events": ["*"]},
            role="admin",
            status=422,
            code="validation_error",
        )
        assert "local stack itself" in json.dumps(error)
