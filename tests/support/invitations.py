"""Invitation e-mails as the invitee reads them, for tests: what SES (moto) sent, parsed as a
mail client would, and the token from a message's links."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default as email_policy
from typing import Any, cast

import boto3

ACCOUNT, REGION = "123456789012", "us-east-1"
LINK = re.compile(r"/v1/invitations/([A-Za-z0-9_-]+)/(accept|decline)")


def sent_messages() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def parsed(message: Any) -> EmailMessage:
    """A sent message as a mail client reads it (invitations are sent raw: MIME as built).

    Parsed from bytes: the email package decodes 8bit parts only from bytes."""
    raw = str(message.raw_data).encode("utf-8")
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email_policy))


def text_of(message: Any) -> str:
    body = parsed(message).get_body(("plain",))
    assert body is not None, "no text/plain part"
    return str(body.get_content())


def html_of(message: Any) -> str:
    body = parsed(message).get_body(("html",))
    assert body is not None, "no text/html part"
    return str(body.get_content())


def recipients() -> list[str]:
    return [str(parsed(m)["To"]) for m in sent_messages()]


def latest_to(address: str) -> Any:
    mine = [m for m in sent_messages() if str(parsed(m)["To"]) == address]
    assert mine, f"no e-mail to {address}"
    return mine[-1]


def token_for(address: str) -> str:
    """The token of the latest e-mail sent to `address`, read from its text like a user would."""
    links = LINK.findall(text_of(latest_to(address)))
    assert {kind for _, kind in links} == {"accept", "decline"}
    assert len({token for token, _ in links}) == 1
    return str(links[0][0])


def verify_identity(identity: str) -> None:
    """Verify an SES identity on moto (an address or a domain), as an admin would on AWS."""
    ses = boto3.client("ses")
    if "@" in identity:
        ses.verify_email_identity(EmailAddress=identity)
    else:
        ses.verify_domain_identity(Domain=identity)
