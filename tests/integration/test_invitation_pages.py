"""The invitation e-mail and the pages its links open, through the real lambda_handler on moto.

A GET on a link is a page that changes nothing (mail scanners prefetch links); its button
posts, and the answer is a page for a browser, JSON for an API client. (The same in a real
browser: tests/local/test_invitation_browser.py.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import Api, Aws, table_items
from tests.support.invitations import html_of, latest_to, parsed, text_of, token_for

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# A program name that would break a page or an e-mail if it were not escaped.
HOSTILE_NAME = 'Café <script>alert("x")</script> & Co'


def invited(api: Api, program_name: str | None = HOSTILE_NAME) -> tuple[str, str]:
    """(customer id, token) of a customer just invited by staff, in a business naming its program."""
    if program_name:
        api.ok("PUT", "/v1/settings/invitations", {"program_name": program_name}, role="admin")
    customer_id = api.ok("POST", "/v1/customers", {"email": "ann@example.com"})["customer_id"]
    api.ok("POST", f"/v1/customers/{customer_id}/invitations")
    return customer_id, token_for("ann@example.com")


def status_of(api: Api, customer_id: str) -> str:
    return str(api.ok("GET", f"/v1/customers/{customer_id}")["program_status"])


def content_type(response: Any) -> str:
    return str({k.lower(): v for k, v in response.headers.items()}.get("content-type", ""))


# --- the e-mail ---------------------------------------------------------------------------


def test_the_email_has_a_text_and_an_html_part_whose_links_survive_copying(api: Api) -> None:
    # Given a customer invited by staff, in a business whose program name needs escaping
    _, token = invited(api)
    message = latest_to("ann@example.com")
    mail = parsed(message)
    # Then it is multipart/alternative: plain text first, then HTML
    assert mail.get_content_type() == "multipart/alternative"
    parts = list(mail.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    # And no part uses an encoding that breaks lines inside a link (7bit or 8bit only)
    assert {str(p["Content-Transfer-Encoding"]) for p in parts} <= {"7bit", "8bit"}
    # And in the raw message, as stored in the outbox, each link is whole on one short line
    raw_lines = message.raw_data.splitlines()
    for choice in ("accept", "decline"):
        link = f"/v1/invitations/{token}/{choice}"
        assert any(link in line for line in raw_lines), f"{choice} link cut in the raw message"
    assert max(len(line.encode()) for line in raw_lines) <= 998
    # And the HTML part escapes the program name and links to the pages
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Caf&#233;" in html
    assert re.search(f'href="https?://[^"]+/v1/invitations/{token}/accept"', html)
    # And the text part names the program as it is
    assert HOSTILE_NAME in text_of(message)


# --- the page a link opens ----------------------------------------------------------------


@pytest.mark.parametrize(("choice", "button"), [("accept", "Accept the invitation"), ("decline", "Decline")])
def test_opening_a_link_shows_a_page_and_changes_nothing(
    api: Api, aws: Aws, choice: str, button: str
) -> None:
    # Given an invited customer
    customer_id, token = invited(api)
    before = table_items(aws)
    # When the link from the e-mail is opened (a GET, as a mail scanner or a browser does)
    page = api("GET", f"/v1/invitations/{token}/{choice}", role=None)
    # Then it is a page with the program's name (escaped), the choice and a button that posts
    assert page.status == 200 and content_type(page).startswith("text/html"), page
    html = page.body
    assert "Café &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert "<script>" not in html
    assert re.search(r'<form method="post">\s*<button type="submit" id="answer">' + button, html)
    # And the token is not written in the page, which no one caches, frames or refers on
    assert token not in html
    headers = {k.lower(): v for k, v in page.headers.items()}
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # And nothing changed: the customer is still pending, the link still unused
    assert table_items(aws) == before and status_of(api, customer_id) == "pending"


def test_a_page_for_a_business_without_a_program_name(api: Api) -> None:
    # Given a business that never named its program / When the link is opened
    _, token = invited(api, program_name=None)
    page = api("GET", f"/v1/invitations/{token}/accept", role=None)
    # Then the page still reads well
    assert page.status == 200 and "Join our loyalty program" in page.body


@pytest.mark.parametrize(
    ("choice", "status", "says"),
    [("accept", "active", "your membership is active"), ("decline", "inactive", "You declined")],
)
def test_the_pages_button_answers_with_a_page(api: Api, choice: str, status: str, says: str) -> None:
    # Given an invited customer who opened the link
    customer_id, token = invited(api)
    # When the page's form is posted (a browser: form-encoded, asking for HTML)
    answered = api(
        "POST",
        f"/v1/invitations/{token}/{choice}",
        role=None,
        raw_body="",
        headers={"accept": BROWSER_ACCEPT, "content-type": "application/x-www-form-urlencoded"},
    )
    # Then the answer is a page saying what happened, and the customer's status follows
    assert answered.status == 200 and content_type(answered).startswith("text/html"), answered
    assert says in answered.body and "&lt;script&gt;" in answered.body
    assert status_of(api, customer_id) == status


def test_api_clients_keep_getting_json(api: Api) -> None:
    # Given an invited customer / When the answer is posted by curl (Accept: */*)
    customer_id, token = invited(api)
    answered = api("POST", f"/v1/invitations/{token}/accept", role=None, headers={"accept": "*/*"})
    # Then the answer is JSON
    assert answered.status == 200 and content_type(answered) == "application/json"
    assert answered.body == {
        "customer_id": customer_id,
        "program_status": "active",
        "program_name": HOSTILE_NAME,
    }


def test_a_used_link_shows_a_page_saying_it_was_used(api: Api) -> None:
    # Given a customer who accepted with the page's button
    customer_id, token = invited(api)
    api.ok("POST", f"/v1/invitations/{token}/accept", role=None)
    for choice in ("accept", "decline"):
        # When either link is opened again / Then a page says the link was already used
        page = api("GET", f"/v1/invitations/{token}/{choice}", role=None)
        assert page.status == 410 and content_type(page).startswith("text/html"), page
        assert "This link was already used" in page.body and "<form" not in page.body
        # When the button of a page opened before is pressed again / Then the same page
        again = api(
            "POST", f"/v1/invitations/{token}/{choice}", role=None, headers={"accept": BROWSER_ACCEPT}
        )
        assert again.status == 410 and "This link was already used" in again.body
    # And an API client gets the JSON error as before; the customer stayed active
    used = api("POST", f"/v1/invitations/{token}/accept", role=None)
    assert used.status == 410 and used.body["error"]["details"]["reason"] == "used"
    assert status_of(api, customer_id) == "active"


@pytest.mark.parametrize(
    ("token", "status", "says"),
    [
        ("not-a-real-token", 404, "Unknown invitation link"),
        ("x" * 300, 422, "This link cannot be used"),
        ("%3Cscript%3E", 404, "Unknown invitation link"),
    ],
)
def test_a_bad_link_is_a_page_never_a_500(api: Api, token: str, status: str, says: str) -> None:
    # When a made-up, overlong or hostile link is opened / Then a page that says so
    page = api("GET", f"/v1/invitations/{token}/accept", role=None)
    assert page.status == status and content_type(page).startswith("text/html"), page
    assert says in page.body and "<script" not in page.body
