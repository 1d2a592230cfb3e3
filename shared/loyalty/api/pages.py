"""HTML pages behind the invitation links (docs/design.md#invitations): the page a link
opens, the answer, and what went wrong, for browsers; API clients keep their JSON.

A GET on a link shows a page and changes nothing (mail scanners prefetch links); only its
button posts. Everything shown is escaped: the program's name is the business's data.
The token stays in the address bar only: the form posts back to the page's own URL (no
`action`), no link spells it out, and `Referrer-Policy: no-referrer` keeps it from
other sites.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from loyalty.domain.invitation_mail import DEFAULT_PROGRAM
from loyalty.schemas.invitations import InvitationAnswer, InvitationLink

HTML_TYPE = "text/html; charset=utf-8"
# For the OpenAPI document: what a page route answers besides (or instead of) JSON.
HTML_CONTENT: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
PAGE_HEADERS = {
    # A page reflects the link's state when it is opened: never cached, never framed.
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f4;color:#1c1917}"
    "main{max-width:32rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:.5rem}"
    "h1{font-size:1.5rem}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
    ".aside{color:#57534e;font-size:.9rem}"
)
# What a browser is told when a link cannot be answered, by the error's `details.reason`.
_TITLES = {
    "used": "This link was already used",
    "expired": "This link has expired",
    "superseded": "A newer invitation replaced this link",
    "closed": "This invitation is closed",
    "unknown": "Unknown invitation link",
}


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above application/json.

    A browser's form post does (`text/html,...,*/*;q=0.8`); curl's `*/*` and API clients
    asking for JSON do not, so they keep getting JSON.
    """
    html_q = json_q = 0.0
    for part in (accept or "").split(","):
        media, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html_q = max(html_q, quality)
        elif media == "application/json":
            json_q = max(json_q, quality)
    return html_q > 0 and html_q > json_q


def wants_html(event: APIGatewayProxyEventV2) -> bool:
    """A page route answers HTML to a GET (the link itself), and to a POST that asks for it."""
    return event.http_method == "GET" or prefers_html((event.headers or {}).get("accept"))


def _page(status: int, title: str, body: str) -> Response[str]:
    """A whole page; `title` and `body` are HTML whose user data the caller escaped."""
    html = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return Response(status_code=status, content_type=HTML_TYPE, body=html, headers=dict(PAGE_HEADERS))


def _program(name: str | None) -> str:
    return escape(name or DEFAULT_PROGRAM)


def invitation_page(link: InvitationLink) -> Response[str]:
    """The page an e-mail link opens: the program, the choice, and a button that posts it."""
    program = _program(link.program_name)
    if link.choice == "accept":
        title = f"Join {program}"
        lead = f"You are invited to join {program}."
        button = "Accept the invitation"
        # Relative: from .../accept this is .../decline, and the token is not written out.
        aside = 'Not interested? <a href="decline">Decline the invitation</a>.'
    else:
        title = f"Decline the invitation to {program}"
        lead = f"Press the button to decline the invitation to join {program}."
        button = "Decline the invitation"
        aside = 'Changed your mind? <a href="accept">Accept the invitation</a>.'
    body = (
        f"<h1>{title}</h1>\n<p>{lead}</p>\n"
        f'<form method="post">\n<button type="submit" id="answer">{button}</button>\n</form>\n'
        f'<p class="aside">{aside}</p>'
    )
    return _page(200, title, body)


def answered_page(answer: InvitationAnswer) -> Response[str]:
    """What the invitee sees after pressing the button."""
    program = _program(answer.program_name)
    if answer.program_status.value == "active":
        title = f"Welcome to {program}"
        text = "You accepted the invitation: your membership is active."
    else:
        title = "Invitation declined"
        text = f"You declined the invitation to join {program}."
    return _page(200, title, f'<h1>{title}</h1>\n<p id="result">{text}</p>')


def answer_response(
    event: APIGatewayProxyEventV2, answer: InvitationAnswer
) -> Response[InvitationAnswer | str]:
    """The answer as a page for a browser's form post, as JSON for everyone else."""
    if prefers_html((event.headers or {}).get("accept")):
        return answered_page(answer)  # type: ignore[return-value]  # Response is invariant in its body
    return Response(status_code=200, content_type="application/json", body=answer)


def error_page(status: int, message: str, details: dict[str, Any] | None = None) -> Response[str]:
    """A refusal as a page: why the link cannot be used (already used, expired, ...)."""
    reason = str((details or {}).get("reason") or "")
    if status >= 500:
        title, text = "Something went wrong", "Nothing was changed. Please try again later."
    else:
        title = _TITLES.get(reason, "This link cannot be used")
        text = (message[:1].upper() + message[1:]).rstrip(".") + "."
    return _page(status, escape(title), f'<h1>{escape(title)}</h1>\n<p id="result">{escape(text)}</p>')
