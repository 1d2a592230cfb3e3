"""`make run` as a user meets it: template.yaml's real functions over real HTTP."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from local.import_cli import run_import
from local.stack import LocalStack
from local.template import ROOT

pytestmark = pytest.mark.local


def _business() -> str:
    # The session's stack is shared: each test works in a business of its own.
    return f"biz-{uuid.uuid4().hex[:8]}"


def _pump(stack: LocalStack, name: str) -> dict[str, Any]:
    pumps = requests.get(stack.url("/_local/health"), timeout=10).json()["pumps"]
    return next(p for p in pumps if p["name"] == name)


def test_health_names_the_moto_endpoint(local_stack: LocalStack) -> None:
    body = requests.get(local_stack.url("/_local/health"), timeout=10).json()
    assert body["status"] == "ok" and body["moto_endpoint"] == local_stack.moto_endpoint


def test_a_customer_created_with_a_token_reads_back(local_stack: LocalStack) -> None:
    # Given an admin of one business
    business = _business()
    admin = local_stack.auth("admin", business)

    # When a customer is created
    created = requests.post(
        local_stack.url("/v1/customers"),
        json={"email": f"Ann.{business}@Example.com", "first_name": "Ann"},
        headers=admin,
        timeout=30,
    )

    # Then it reads back with the same id, normalised e-mail and status imported
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    read = requests.get(local_stack.url(f"/v1/customers/{customer_id}"), headers=admin, timeout=30)
    assert read.status_code == 200
    assert read.json()["email"] == f"ann.{business}@example.com"
    assert read.json()["program_status"] == "imported"
    # And another business does not see it
    other = requests.get(
        local_stack.url(f"/v1/customers/{customer_id}"),
        headers=local_stack.auth("admin", _business()),
        timeout=30,
    )
    assert other.status_code == 404


def test_no_token_is_401_and_a_wrong_role_is_403(local_stack: LocalStack) -> None:
    url = local_stack.url("/v1/customers")
    body = {"email": "x@example.com"}
    # When there is no token, then 401
    missing = requests.post(url, json=body, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    # When a customer (not back office) creates a customer, then 403
    customer = requests.post(
        url, json=body, headers=local_stack.auth("customer", _business(), "c-1"), timeout=10
    )
    assert customer.status_code == 403 and customer.json()["error"]["code"] == "forbidden"


def test_malformed_json_is_400_not_500(local_stack: LocalStack) -> None:
    response = requests.post(
        local_stack.url("/v1/customers"),
        data=b"{not json",
        headers={**local_stack.auth("admin", _business()), "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400


def test_the_stream_pump_feeds_the_webhook_dispatch_function(local_stack: LocalStack) -> None:
    # Given the dispatch function's stream mapping, drained
    local_stack.wait_idle()
    before = _pump(local_stack, "stream:WebhookDispatchFunction.TableStream")

    # When a customer profile is written
    business = _business()
    created = requests.post(
        local_stack.url("/v1/customers"),
        json={"email": f"bo.{business}@example.com", "first_name": "Bo"},
        headers=local_stack.auth("admin", business),
        timeout=30,
    )
    assert created.status_code == 201
    local_stack.wait_idle(timeout=20)

    # Then the profile's stream record was handed to the function and it succeeded
    after = _pump(local_stack, "stream:WebhookDispatchFunction.TableStream")
    assert after["delivered"] > before["delivered"], local_stack.log_tail()
    assert after["dead_lettered"] == before["dead_lettered"]


def test_schedules_from_the_template_are_listed_and_run(local_stack: LocalStack) -> None:
    # When the schedules are listed
    listed = requests.get(local_stack.url("/_local/schedules"), timeout=10).json()["items"]
    # Then the template's events are there by name, with their functions and expressions
    by_name = {s["name"]: s for s in listed}
    assert by_name["InvitationRun"]["function"] == "InvitationFunction"
    assert by_name["InvitationRun"]["expression"].startswith("rate(")
    assert by_name["StatusExpiry"]["function"] == "StatusesFunction"
    # And running one returns the function's own result
    response = requests.post(local_stack.url("/_local/schedules/InvitationRun"), timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["function"] == "InvitationFunction"
    assert isinstance(response.json()["result"], dict)


def test_an_invitation_email_lands_in_the_outbox(local_stack: LocalStack) -> None:
    # Given an imported customer with an e-mail address
    business = _business()
    address = f"eve.{business}@example.com"
    staff = local_stack.auth("staff", business)
    created = requests.post(
        local_stack.url("/v1/customers"), json={"email": address}, headers=staff, timeout=30
    )
    assert created.status_code == 201
    customer_id = created.json()["customer_id"]

    # When staff invite them and the stack is idle
    invited = requests.post(
        local_stack.url(f"/v1/customers/{customer_id}/invitations"), headers=staff, timeout=30
    )
    assert invited.status_code in (200, 201), invited.text
    local_stack.wait_idle()

    # Then the e-mail is one .eml file addressed to them
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in local_stack.outbox()
    ]
    mine = [m for m in mails if address in str(m["To"])]
    assert len(mine) == 1
    assert mine[0]["Subject"] and mine[0]["From"]

    # And its accept link points at this stack and works as printed (no token needed)
    plain = mine[0].get_body(("plain",))
    assert plain is not None, "no text/plain part"
    body = plain.get_content()
    links = re.findall(r"http://\S+/accept", body)
    assert links and links[0].startswith(f"{local_stack.base_url}/v1/invitations/"), body
    accepted = requests.post(links[0], timeout=30)
    assert accepted.status_code == 200, accepted.text
    profile = requests.get(local_stack.url(f"/v1/customers/{customer_id}"), headers=staff, timeout=30).json()
    assert profile["program_status"] == "active"


@pytest.mark.skipif(
    not (ROOT / "functions" / "customer_import" / "app.py").exists(),
    reason="functions/customer_import/app.py does not exist yet (tests/local/test_pumps.py covers S3 wiring)",
)
def test_a_presigned_upload_invokes_the_import_function(local_stack: LocalStack) -> None:
    # Given a presigned PUT URL into the import bucket's uploads/ prefix
    bucket = local_stack.resources()["refs"]["ImportBucket"]
    key = f"uploads/{_business()}/{uuid.uuid4().hex}.csv"
    url = local_stack.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
    )
    before = _pump(local_stack, "s3:CustomerImportFunction.Uploaded")["invocations"]

    # When a CSV is uploaded over HTTP
    assert requests.put(url, data=b"email\nzed@example.com\n", timeout=10).status_code == 200
    local_stack.wait_idle(timeout=30)

    # Then the import function was invoked for it
    assert _pump(local_stack, "s3:CustomerImportFunction.Uploaded")["invocations"] == before + 1


@pytest.mark.skipif(
    not (ROOT / "functions" / "customer_import" / "app.py").exists(),
    reason="functions/customer_import/app.py does not exist yet",
)
def test_make_import_uploads_a_csv_and_reports_the_rows(local_stack: LocalStack, tmp_path: Path) -> None:
    # Given a CSV with two good rows and one bad e-mail
    business = _business()
    csv = tmp_path / "customers.csv"
    csv.write_text(
        f"email,first_name\nann.{business}@example.com,Ann\nbob.{business}@example.com,Bob\nnot-an-email,Cy\n"
    )

    # When `make import` runs against the stack (upload URL, HTTP PUT, S3 event, import)
    report = run_import(csv, local_stack.base_url, business, timeout=60)

    # Then the report counts the rows and names the failing one
    assert report["state"] == "completed", report
    assert (report["total"], report["created"], report["failed"]) == (3, 2, 1)
    assert [e["row"] for e in report["errors"]] == [3]
    # And the customers are there
    found = requests.get(
        local_stack.url("/v1/customers"),
        params={"email": f"bob.{business}@example.com"},
        headers=local_stack.auth("staff", business),
        timeout=30,
    ).json()["items"]
    assert [c["first_name"] for c in found] == ["Bob"]


def test_concurrent_requests_are_each_answered_by_their_own_invocation(local_stack: LocalStack) -> None:
    # Given one business and twelve customers to create at the same moment
    from concurrent.futures import ThreadPoolExecutor

    business = _business()
    admin = local_stack.auth("admin", business)

    def create(n: int) -> tuple[int, str]:
        response = requests.post(
            local_stack.url("/v1/customers"),
            json={"email": f"c{n}.{business}@example.com", "first_name": f"C{n}"},
            headers=admin,
            timeout=60,
        )
        return response.status_code, response.json().get("email", response.text)

    # When they are sent in parallel (each to a container of the function, up to its cap)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(create, range(12)))

    # Then every request got its own answer: twelve 201s, each echoing its own e-mail
    assert [status for status, _ in results] == [201] * 12
    assert [email for _, email in results] == [f"c{n}.{business}@example.com" for n in range(12)]
