"""Sending e-mail through SES: the only module that knows about the mail service.

Locally the stack's outbox pump writes every message SES accepted to `.local/outbox/`.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.adapters import aws


class MailError(Exception):
    """The mail service refused or failed to take the message. `code` is safe to log."""

    def __init__(self, code: str) -> None:
        super().__init__(f"mail not sent: {code}")
        self.code = code


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
    except ClientError as exc:
        raise MailError(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
    except BotoCoreError as exc:
        raise MailError(type(exc).__name__) from exc
    return str(out.get("MessageId", ""))
