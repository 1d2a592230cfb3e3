"""Security on moto through the real handlers: tenancy on every route with an id, customers
limited to themselves, mass assignment, SSRF webhook targets, personal data kept out of logs.

(No token on every route, and garbage bodies, are in test_security_routes.py; expired and
badly signed tokens need the local stack's JWT check: tests/local/test_security_local.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Api, Aws, table_items

PURCHASE = {
    "external_id": "pos-1",
    "occurred_at": "2026-11-30T10:00:00Z",
    "amount": 40,
    "eligible_amount": 40,
    "currency": "EUR",
}
REDEMPTION = {"external_id": "rd-1", "points": 10, "reward": "coffee"}
# A body each id-carrying route accepts, so tenancy (not validation) decides the answer.
BODIES: dict[str, Any] = {
    "PATCH /v1/cards/{number}": {"blocked": True},
    "PATCH /v1/customers/{customer_id}": {"first_name": "Mallory"},
    "POST /v1/customers/{customer_id}/cards": {"card_number": "4000777"},
    "POST /v1/customers/{customer_id}/cards/{number}/replacement": {"new_card_number": "4000778"},
    "POST /v1/customers/{customer_id}/exclusion": {},
    "POST /v1/customers/{customer_id}/invitations": {},
    "POST /v1/customers/{customer_id}/opt-out": {},
    "PUT /v1/customers/{customer_id}/program-status": {"status": "inactive", "reason": "x"},
    "PUT /v1/customers/{customer_id}/statuses/{code}": {},
    "PUT /v1/customers/{customer_id}/tier": {"code": "vip", "until": "2030-01-01T00:00:00Z", "floor": False},
    "PATCH /v1/status-definitions/{code}": {"name": "Hijacked"},
    "POST /v1/status-definitions/{code}/assignments": {"action": "assign", "customer_ids": []},
    "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {},
    "POST /v1/customers/{customer_id}/purchases": {**PURCHASE, "external_id": "pos-2"},
    "POST /v1/cards/{number}/purchases": {**PURCHASE, "external_id": "pos-3"},
    "POST /v1/customers/{customer_id}/purchases/{purchase_id}/returns": {
        "external_id": "r-1",
        "eligible_amount": 5,
    },
    "POST /v1/customers/{customer_id}/redemptions": {**REDEMPTION, "external_id": "rd-2"},
    "POST /v1/customers/{customer_id}/redemptions/{redemption_id}/capture": None,
    "POST /v1/customers/{customer_id}/redemptions/{redemption_id}/void": None,
    "POST /v1/customers/{customer_id}/redemptions/{redemption_id}/reversal": None,
    "POST /v1/customers/{customer_id}/point-adjustments": {
        "external_id": "adj-1",
        "points": 5,
        "reason": "x",
    },
}
PUBLIC = {
    f"{method} /v1/invitations/{{token}}/{choice}"
    for method in ("GET", "POST")
    for choice in ("accept", "decline")
}


@pytest.fixture
def loopback_hooks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook URLs on 127.0.0.1 allowed, as in the local stack (no DNS needed in tests)."""
    from loyalty.config import settings

    monkeypatch.setenv("LOYALTY_LOCAL_STACK", "true")
    settings.cache_clear()


HOOK_URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def tenant(api: Api, aws: Aws, loopback_hooks: None) -> dict[str, str]:
    """biz-1 owns a customer with a card and a status, a status definition, a webhook and an import."""
    cid = api.ok("POST", "/v1/customers", {"email": "ann@example.com", "phone": "+4915112345678"})[
        "customer_id"
    ]
    api.ok("POST", "/v1/registrations", {"customer_id": cid, "email": "ann@example.com"})
    api.ok("POST", "/v1/card-batches", {"numbers": ["4000111", "4000777", "4000778"]}, role="admin")
    api.ok("POST", f"/v1/customers/{cid}/cards", {"card_number": "4000111"})
    api.ok("POST", "/v1/status-definitions", {"code": "vip", "name": "VIP", "rank": 1}, role="admin")
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip", {})
    hook = api.ok("POST", "/v1/webhooks", {"url": HOOK_URL, "events": ["*"]}, role="admin")
    report = api.ok("POST", "/v1/imports", {"customers": [{"email": "bo@example.com"}]}, role="admin")
    api.ok("POST", f"/v1/customers/{cid}/purchases", PURCHASE, role="service")
    api.ok("POST", f"/v1/customers/{cid}/redemptions", {**REDEMPTION, "hold": True}, role="service")
    return {
        "customer_id": cid,
        "purchase_id": PURCHASE["external_id"],
        "redemption_id": REDEMPTION["external_id"],
        "number": "4000111",
        "code": "vip",
        "webhook_id": hook["webhook_id"],
        "delivery_id": "0" * 32,
        "import_id": report["import_id"],
        "job_id": "0" * 32,
    }


def snapshot(aws: Aws) -> str:
    items = [i for i in table_items(aws) if "IDEMPOTENCY" not in str(i.get("PK", ""))]
    return json.dumps(sorted(items, key=lambda i: (i["PK"], i["SK"])), sort_keys=True, default=str)


def test_another_business_gets_404_on_every_route_with_an_id_and_changes_nothing(
    api: Api, aws: Aws, tenant: dict[str, str]
) -> None:
    # Given biz-1's data, and every template route that names a resource
    before = snapshot(aws)
    routes = [r for r, _ in aws.routes.all() if "{" in r.path and f"{r.method} {r.path}" not in PUBLIC]
    assert len(routes) >= 20
    answers = {}
    for route in routes:
        key = f"{route.method} {route.path}"
        path = route.path.format(**tenant)
        body = BODIES.get(key) if route.method in ("POST", "PUT", "PATCH") else None
        if key.endswith("/assignments"):
            body = {"action": "assign", "customer_ids": [tenant["customer_id"]]}
        if route.method in ("POST", "PUT", "PATCH"):
            assert key in BODIES, f"add a valid body for {key}"
        # When an admin of biz-2 calls it with biz-1's ids
        answers[key] = api(route.method, path, body, role="admin", business="biz-2").status
    # Then every answer is 404 (the id does not exist for them), and biz-1's data is untouched
    assert {k: s for k, s in answers.items() if s != 404} == {}
    assert snapshot(aws) == before


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/history", None),
        ("GET", "/entitlements", None),
        ("PATCH", "", {"first_name": "Mallory"}),
        ("POST", "/opt-out", {}),
        ("POST", "/exclusion", {}),
        ("POST", "/cards", {"card_number": "4000777"}),
    ],
)
def test_a_customer_token_cannot_reach_someone_elses_profile(
    api: Api, aws: Aws, tenant: dict[str, str], method: str, suffix: str, body: Any
) -> None:
    # Given another registered customer of the same business, holding their own token
    other = api.ok("POST", "/v1/registrations", {"email": "eve@example.com"})["customer_id"]
    assert api("GET", f"/v1/customers/{other}", role="customer", sub=other).status == 200
    before = snapshot(aws)
    # When they call a route for Ann's profile
    answer = api(method, f"/v1/customers/{tenant['customer_id']}{suffix}", body, role="customer", sub=other)
    # Then they are refused and nothing changed
    assert answer.status in (403, 404), answer
    assert snapshot(aws) == before


# --- mass assignment ---------------------------------------------------------------------

SMUGGLED: dict[str, Any] = {
    "program_status": "active",
    "version": 99,
    "business_id": "biz-2",
    "customer_id": "c" * 32,
    "merged_into": "c" * 32,
    "balance": 1_000_000,
}


def refused_or_ignored(answer: Any, field: str) -> None:
    if answer.status == 422:
        assert field in json.dumps(answer.body["error"]), answer
    else:
        assert answer.status in (200, 201), answer


@pytest.mark.parametrize("field", sorted(SMUGGLED))
def test_create_patch_and_import_refuse_or_ignore_protected_fields(api: Api, aws: Aws, field: str) -> None:
    value = SMUGGLED[field]
    # When a client smuggles the field into a create, a patch and an import row
    created = api("POST", "/v1/customers", {"email": "a@example.com", field: value})
    refused_or_ignored(created, field)
    cid = api.ok("POST", "/v1/customers", {"email": "b@example.com"})["customer_id"]
    refused_or_ignored(api("PATCH", f"/v1/customers/{cid}", {"first_name": "B", field: value}), field)
    imported = api(
        "POST", "/v1/imports", {"customers": [{"email": "c@example.com", field: value}]}, role="admin"
    )
    refused_or_ignored(imported, field)
    # Then no stored customer took the value: all are imported, version 1 or 2, in biz-1, unmerged, no balance
    for item in (i for i in table_items(aws) if i.get("entity") == "customer"):
        assert item["program_status"] == "imported" and item["business_id"] == "biz-1"
        assert item["version"] <= 2 and not item.get("merged_into") and not item.get("balance")
        assert item["customer_id"] != "c" * 32


@pytest.mark.parametrize("field", ["version", "business_id", "merged_into", "balance", "customer_id"])
def test_status_change_registration_and_webhooks_refuse_or_ignore_protected_fields(
    api: Api, aws: Aws, loopback_hooks: None, field: str
) -> None:
    value = SMUGGLED[field]
    cid = api.ok("POST", "/v1/customers", {"email": "b@example.com"})["customer_id"]
    # When the field rides along a status change, an anonymous sign-up and a webhook subscription
    change = api("PUT", f"/v1/customers/{cid}/program-status", {"status": "pending", field: value})
    refused_or_ignored(change, field)
    signup = api(
        "POST", "/v1/anonymous-customers", {"device_id": "d1", field: value}, role="customer", sub="a" * 32
    )
    refused_or_ignored(signup, field)
    hook = api("POST", "/v1/webhooks", {"url": HOOK_URL, "events": ["*"], field: value}, role="admin")
    refused_or_ignored(hook, field)
    # Then nothing stored carries the smuggled value
    for item in table_items(aws):
        if item.get("entity") in ("customer", "webhook"):
            assert item.get("business_id", "biz-1") == "biz-1"
            assert not item.get("merged_into") and not item.get("balance")
            assert item.get("version", 1) <= 2


# --- SSRF ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.1.20/hook",
        "https://172.16.3.4/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "http://93.184.216.34/hook",
    ],
)
def test_webhook_targets_on_internal_addresses_or_plain_http_are_refused(
    api: Api, aws: Aws, url: str
) -> None:
    # When an admin subscribes such a URL (outside the local stack)
    answer = api("POST", "/v1/webhooks", {"url": url, "events": ["*"]}, role="admin")
    # Then it is a 422 naming `url`, and no subscription is stored
    assert answer.status == 422, answer
    assert "url" in [f["field"] for f in answer.body["error"]["details"]["fields"]]
    assert not [i for i in table_items(aws) if i.get("entity") == "webhook"]


# --- personal data in logs -------------------------------------------------------------------


def test_no_function_logs_its_incoming_events() -> None:
    # Given the template / Then no function turns Powertools' event logging on (events hold personal data)
    from local import template as tpl

    text = json.dumps(tpl.load())
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in text or '"POWERTOOLS_LOGGER_LOG_EVENT": "false"' in text


def test_personal_data_never_reaches_the_logs(
    api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from loyalty.observability import logger

    email, phone, name = "zed.secret@example.com", "+4915199988877", "Zebulon"
    # Our logger at its most verbose (library debug logs such as botocore's wire dumps stay off, as deployed)
    logger.setLevel("DEBUG")
    caplog.set_level("DEBUG", logger=logger.name)
    try:
        # When a customer is created, duplicated, patched, refused, and excluded, with every log level on
        cid = api.ok("POST", "/v1/customers", {"email": email, "phone": phone, "first_name": name})[
            "customer_id"
        ]
        assert api("POST", "/v1/customers", {"email": email}).status == 409
        api.ok("PATCH", f"/v1/customers/{cid}", {"first_name": name + "x", "attributes": {"note": email}})
        assert api("PATCH", f"/v1/customers/{cid}", {"email": "not-an-email " + email}).status == 422
        api.ok("POST", "/v1/imports", {"customers": [{"email": email, "phone": phone}]}, role="admin")
        # (an invitation whose e-mail fails logs a warning about the customer)
        import boto3

        boto3.client("ses").verify_email_identity(EmailAddress="revoked@example.com")
        api.ok("PUT", "/v1/settings/invitations", {"sender": "revoked@example.com"}, role="admin")
        boto3.client("ses").delete_identity(Identity="revoked@example.com")
        assert api("POST", f"/v1/customers/{cid}/invitations").status == 409
        api.ok("POST", f"/v1/customers/{cid}/exclusion", {"reason": f"asked by {email}"})
    finally:
        logger.setLevel("WARNING")
    # Then no log line holds the e-mail, phone or name
    # (every record with its extra fields, as the JSON formatter would print them)
    captured = capsys.readouterr()
    records = [json.dumps(r.__dict__, default=str) for r in caplog.records]
    logged = captured.out + captured.err + "\n".join(records)
    assert "customer_id" in logged  # the service did log about this customer
    for secret in (email, phone, name, "zed.secret"):
        assert secret not in logged


def test_a_body_sent_with_another_content_type_is_415_not_500(api: Api, aws: Aws) -> None:
    # When a client posts JSON labelled text/plain (found by the fuzzer)
    answer = api(
        "POST", "/v1/customers", raw_body='{"email": "a@example.com"}', headers={"content-type": "text/plain"}
    )
    # Then it is told to send JSON, and nothing is stored
    assert answer.status == 415 and answer.body["error"]["code"] == "unsupported_media_type", answer
    assert not [i for i in table_items(aws) if i.get("entity") == "customer"]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/x-www-form-urlencoded"])
def test_form_bodies_are_415_not_500(api: Api, content_type: str) -> None:
    # When a JSON body is labelled as a form without a boundary (found by the fuzzer)
    answer = api(
        "POST", "/v1/customers", raw_body='{"email": "a@example.com"}', headers={"content-type": content_type}
    )
    # Then it is a 415, not a server error
    assert answer.status == 415, answer


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/customers", {"email": "a@example.com", "attributes": {"n": 10**40}}),
        ("/v1/customers", {"email": "a@example.com", "attributes": {"n": 5e-324}}),
        (
            "/v1/status-definitions",
            {"code": "z", "name": "Z", "rank": 1, "modifiers": {"tier_points_multiplier": 5e-324}},
        ),
    ],
)
def test_numbers_dynamodb_cannot_store_are_422_not_500(
    api: Api, aws: Aws, path: str, body: dict[str, Any]
) -> None:
    # When a number outside DynamoDB's range or precision is sent (found by the fuzzer)
    answer = api("POST", path, body, role="admin")
    # Then it is refused as invalid and nothing is stored
    assert answer.status == 422, answer
    assert not [i for i in table_items(aws) if i.get("entity") in ("customer", "status_definition")]


def test_a_body_that_is_not_utf8_is_400_not_500(api: Api, aws: Aws) -> None:
    import base64

    from local.events import http_api_event
    from local.runtime import invoke

    # Given a body whose bytes are not UTF-8 (API Gateway passes them base64-encoded; found by the fuzzer)
    spec, route, params = aws.routes.match("POST", "/v1/imports")  # type: ignore[misc]
    event = http_api_event(
        "POST",
        "/v1/imports",
        route_path=route.path,
        path_parameters=params,
        body=None,
        raw_body=None,
        query={},
        headers={"content-type": "application/json"},
        claims={"sub": "a", "business_id": "biz-1", "role": "admin"},
    )
    event.update(body=base64.b64encode(b"\xd1\xa1\xff\x13H").decode(), isBase64Encoded=True)
    # When it is handled / Then it is a 400, not a server error
    assert invoke(spec, event)["statusCode"] == 400
