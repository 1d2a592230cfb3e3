"""Sending e-mail through SES: the only module that knows about the mail service.

Locally the stack's outbox pump writes every message SES accepted to `.local/outbox/`
(a raw message byte for byte, as built here).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.adapters import aws

# RFC 5321: a line may hold at most 998 characters before its CRLF.
MAX_LINE = 998


class MailError(Exception):
    """The mail service refused or failed to take the message. `code` is safe to log."""

    def __init__(self, code: str) -> None:
        super().__init__(f"mail not sent: {code}")
        self.code = code


def _failure(exc: Exception) -> MailError:
    if isinstance(exc, ClientError):
        return MailError(str(exc.response.get("Error", {}).get("Code", "ClientError")))
    return MailError(type(exc).__name__)


def send(sender: str, to: str, subject: str, text: str) -> str:
    """Send a plain-text e-mail; return the provider's message id or raise MailError."""
    try:
        out = aws.ses().send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            },
        )
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc) from exc
    return str(out.get("MessageId", ""))


def _transfer_encoding(body: str) -> str | None:
    """7bit or 8bit whenever every line fits: never quoted-printable, whose soft line breaks
    cut long links in two for anyone who copies them from the raw message. None (the email
    package's choice) only for lines SMTP could not carry, which no template here writes."""
    if any(len(line.encode()) > MAX_LINE for line in body.splitlines()):
        return None
    return "7bit" if body.isascii() else "8bit"


def build_message(sender: str, to: str, subject: str, text: str, html: str) -> bytes:
    """A multipart/alternative message (plain text, then HTML), links kept whole."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    # A line break in a header would start a new header: user data never gets to do that.
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(usegmt=True)
    message.set_content(text, subtype="plain", charset="utf-8", cte=_transfer_encoding(text))
    message.add_alternative(html, subtype="html", charset="utf-8", cte=_transfer_encoding(html))
    return message.as_bytes()


def send_alternative(sender: str, to: str, subject: str, text: str, html: str) -> str:
    """Send a plain-text and HTML e-mail; return the provider's message id or raise MailError.

    Sent raw so this module, not SES, chooses the transfer encoding. Without `Destinations`
    SES takes the recipient from the To header.
    """
    raw = build_message(sender, to, subject, text, html)
    try:
        out = aws.ses().send_raw_email(Source=sender, RawMessage={"Data": raw})
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc) from exc
    return str(out.get("MessageId", ""))


def verification_statuses(identities: list[str]) -> dict[str, str]:
    """SES's verification status by identity (address or domain): `Success`, `Pending`,
    `Failed`, ...; an identity SES does not know is absent. Raises MailError."""
    try:
        out = aws.ses().get_identity_verification_attributes(Identities=identities)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc) from exc
    found = out.get("VerificationAttributes") or {}
    return {str(k): str(v.get("VerificationStatus", "")) for k, v in found.items()}
