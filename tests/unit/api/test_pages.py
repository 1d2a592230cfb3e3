"""The invitation pages (loyalty.api.pages): negotiation, escaping, headers, without AWS."""

from __future__ import annotations

import pytest

from loyalty.api.pages import answered_page, error_page, invitation_page, prefers_html
from loyalty.domain.lifecycle import ProgramStatus
from loyalty.schemas.invitations import InvitationAnswer, InvitationLink

HOSTILE = '<img src=x onerror="alert(1)"> & Co'


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser's form post
        ("text/html", True),
        ("application/xhtml+xml", True),
        ("*/*", False),  # curl
        (None, False),
        ("", False),
        ("application/json", False),
        ("application/json, text/html", False),  # a tie keeps the API's JSON
        ("application/json;q=0.5, text/html", True),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
        ("TEXT/HTML ; Q=1", True),
    ],
)
def test_html_only_when_the_client_ranks_it_above_json(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


@pytest.mark.parametrize("choice", ["accept", "decline"])
def test_the_link_page_escapes_the_program_and_posts_to_itself(choice: str) -> None:
    # When the page for a link is rendered for a program with a hostile name
    page = invitation_page(InvitationLink(choice=choice, program_name=HOSTILE))
    html = str(page.body)
    # Then the name is shown as text, and the only form posts back to the page's own URL
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; Co" in html
    assert html.count("<form") == 1 and '<form method="post">' in html and "action=" not in html
    # And it is served as HTML that is never cached, framed or given a referrer
    assert page.status_code == 200 and page.content_type == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]


def test_the_answered_page_says_what_happened() -> None:
    joined = answered_page(
        InvitationAnswer(customer_id="c", program_status=ProgramStatus.ACTIVE, program_name=HOSTILE)
    )
    assert "Welcome to &lt;img" in str(joined.body) and "membership is active" in str(joined.body)
    declined = answered_page(InvitationAnswer(customer_id="c", program_status=ProgramStatus.INACTIVE))
    assert "You declined the invitation to join our loyalty program." in str(declined.body)


@pytest.mark.parametrize(
    ("status", "reason", "title"),
    [
        (410, "used", "This link was already used"),
        (410, "expired", "This link has expired"),
        (410, "superseded", "A newer invitation replaced this link"),
        (410, "closed", "This invitation is closed"),
        (404, "unknown", "Unknown invitation link"),
        (409, None, "This link cannot be used"),
        (500, None, "Something went wrong"),
    ],
)
def test_error_pages_keep_the_status_and_say_why(status: int, reason: str | None, title: str) -> None:
    page = error_page(status, "this invitation link was <already> used", {"reason": reason})
    assert page.status_code == status and f"<h1>{title}</h1>" in str(page.body)
    if status < 500:
        assert "This invitation link was &lt;already&gt; used." in str(page.body)
