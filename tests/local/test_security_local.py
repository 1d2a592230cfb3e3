"""Security over real HTTP on the local stack: the JWT check refuses expired, badly signed,
unsigned and incomplete tokens on every kind of route; another business sees 404."""

from __future__ import annotations

import uuid

import jwt
import pytest
import requests

from local.stack import LocalStack
from local.token import make_token

# The local secret is short by design (docs/design.md#local-stack); tokens signed with it here need not warn.
pytestmark = [pytest.mark.local, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]

ROUTES = [
    ("GET", "/v1/customers", None),
    ("POST", "/v1/customers", {"email": "x@example.com"}),
    ("GET", "/v1/customers/0123456789abcdef0123456789abcdef", None),
    ("PUT", "/v1/customers/0123456789abcdef0123456789abcdef/program-status", {"status": "inactive"}),
    ("POST", "/v1/imports", {"customers": [{"email": "y@example.com"}]}),
    ("GET", "/v1/webhooks", None),
]


def _business() -> str:
    return f"sec-{uuid.uuid4().hex[:8]}"


def _bad_tokens(business: str) -> dict[str, str]:
    return {
        "expired": make_token(business, "admin", ttl=-60),
        "wrong signature": make_token(business, "admin", key="not-the-local-secret-" + "x" * 16),
        "unsigned (alg none)": jwt.encode(
            {"sub": "a", "business_id": business, "role": "admin"}, None, "none"
        ),
        "no business claim": jwt.encode({"sub": "a", "role": "admin"}, "local-dev-secret", "HS256"),
        "not a JWT": "garbage.token.value",
    }


@pytest.mark.parametrize(
    "kind", ["expired", "wrong signature", "unsigned (alg none)", "no business claim", "not a JWT"]
)
def test_bad_tokens_are_401_on_every_kind_of_route_and_store_nothing(
    local_stack: LocalStack, kind: str
) -> None:
    business = _business()
    token = _bad_tokens(business)[kind]
    for method, path, body in ROUTES:
        # When a request carries the bad token
        answer = requests.request(
            method, local_stack.url(path), json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        # Then it is refused before any handler runs
        assert answer.status_code == 401, (kind, method, path, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
    # And nothing was created in the business the token named
    listed = requests.get(
        local_stack.url("/v1/customers"),
        params={"status": "imported"},
        headers=local_stack.auth("admin", business),
        timeout=10,
    )
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_another_business_token_sees_404_over_http(local_stack: LocalStack) -> None:
    # Given a customer in one business
    owner, intruder = _business(), _business()
    created = requests.post(
        local_stack.url("/v1/customers"),
        json={"email": "sec@example.com"},
        headers=local_stack.auth("staff", owner),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["customer_id"]
    # When an admin of another business reads and changes it
    headers = local_stack.auth("admin", intruder)
    read = requests.get(local_stack.url(f"/v1/customers/{cid}"), headers=headers, timeout=10)
    change = requests.put(
        local_stack.url(f"/v1/customers/{cid}/program-status"),
        json={"status": "pending"},
        headers=headers,
        timeout=10,
    )
    # Then both are 404 and the customer is unchanged
    assert (read.status_code, change.status_code) == (404, 404)
    mine = requests.get(
        local_stack.url(f"/v1/customers/{cid}"), headers=local_stack.auth("staff", owner), timeout=10
    )
    assert mine.json()["version"] == 1
