"""Sending e-mail through SES: the only module that knows about the mail service.

The local stack sets LOYALTY_OUTBOX_DIR; every sent message is then also written there as
an .eml file so a developer can open the invitation and follow its links.
"""

from __future__ import annotations

from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.clock import new_id
from loyalty.config import settings


class MailError(Exception):
    """The mail service refused or failed to take the message. `code` is safe to log."""

    def __init__(self, code: str) -> None:
        super().__init__(f"mail not sent: {code}")
        self.code = code


@lru_cache(maxsize=1)
def client() -> Any:
    import boto3  # deferred: only the invitation paths pay for an SES client

    return boto3.client("ses")


def send(sender: str, to: str, subject: str, text: str) -> str:
    """Send a plain-text e-mail; return the provider's message id or raise MailError."""
    try:
        out = client().send_email(
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
    message_id = str(out.get("MessageId", ""))
    if settings().outbox_dir:
        _write_outbox(Path(settings().outbox_dir), sender, to, subject, text, message_id)
    return message_id


def _write_outbox(folder: Path, sender: str, to: str, subject: str, text: str, message_id: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{message_id or new_id()}@local>"
    message.set_content(text)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{message_id or new_id()}.eml").write_bytes(bytes(message))
