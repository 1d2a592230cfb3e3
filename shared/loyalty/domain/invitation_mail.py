"""What an invitation e-mail says (docs/design.md#invitations): subject, plain text and HTML.

No I/O. Each link sits alone on its own line in both parts, so it survives copying, and
everything put into the HTML (the program's name is the business's data) is escaped. The
HTML part is ASCII (other characters as references), so it never needs an encoding that
could cut a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

DEFAULT_PROGRAM = "our loyalty program"


@dataclass(frozen=True)
class InvitationMail:
    subject: str
    text: str
    html: str


def _ascii_html(value: str) -> str:
    return escape(value, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def compose(
    kind: str, program_name: str | None, accept_url: str, decline_url: str, lifetime_days: int
) -> InvitationMail:
    """The e-mail for one invitation (`kind` "invitation") or reminder (`kind` "reminder")."""
    program = program_name or DEFAULT_PROGRAM
    subject = f"Reminder: your invitation to {program}" if kind == "reminder" else f"Join {program}"
    text = (
        f"You are invited to join {program}.\n\n"
        f"Accept the invitation:\n{accept_url}\n\n"
        f"Not interested? Decline it:\n{decline_url}\n\n"
        f"Each link opens a page with a button; nothing changes until you press it.\n"
        f"This invitation works once and expires in {lifetime_days} days.\n"
    )
    name = _ascii_html(program)
    html = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_ascii_html(subject)}</title>\n</head>\n<body>\n"
        f"<p>You are invited to join {name}.</p>\n"
        "<p>\n"
        f'<a href="{_ascii_html(accept_url)}">Accept the invitation</a>\n'
        "</p>\n"
        "<p>\nNot interested?\n"
        f'<a href="{_ascii_html(decline_url)}">Decline it</a>\n'
        "</p>\n"
        "<p>Each link opens a page with a button; nothing changes until you press it. "
        f"This invitation works once and expires in {lifetime_days} days.</p>\n"
        "</body>\n</html>\n"
    )
    return InvitationMail(subject, text, html)
