"""Standard Webhooks signatures made by loyalty.domain.webhooks.signing, verified by `standardwebhooks`."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loyalty.domain.webhooks import signing as webhook_signing


def test_secret_has_the_standard_form_and_enough_entropy() -> None:
    # Given / When two secrets are made
    first, second = webhook_signing.new_secret(), webhook_signing.new_secret()
    # Then they are whsec_ + base64 of 24..64 random bytes, and differ
    assert first.startswith("whsec_") and first != second
    assert 24 <= len(base64.b64decode(first.removeprefix("whsec_"))) <= 64


def test_signed_headers_verify_with_the_reference_library() -> None:
    # Given a secret and a body
    secret = webhook_signing.new_secret()
    body = json.dumps({"type": "customer.created", "timestamp": "t", "data": {"customer_id": "c1"}})
    # When the headers are made
    headers = webhook_signing.headers(secret, "evt_1_0", int(time.time()), body)
    # Then standardwebhooks accepts them and returns the payload
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert headers["webhook-id"] == "evt_1_0"


def test_a_tampered_body_or_another_secret_fails_verification() -> None:
    # Given signed headers
    secret = webhook_signing.new_secret()
    body = '{"type":"customer.created"}'
    headers = webhook_signing.headers(secret, "evt_1_0", int(time.time()), body)
    # When the body changes, or another secret verifies / Then verification fails
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("created", "excluded"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_signing.new_secret()).verify(body, headers)


def test_signature_matches_the_reference_signer() -> None:
    # Given the reference library's own signer / When both sign the same message / Then they agree
    from datetime import UTC, datetime

    secret = webhook_signing.new_secret()
    stamp = 1_790_000_000
    ours = webhook_signing.signature(secret, "msg_x", stamp, "{}")
    theirs = Webhook(secret).sign("msg_x", datetime.fromtimestamp(stamp, UTC), "{}")
    assert ours == theirs
