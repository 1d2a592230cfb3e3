"""The invitation e-mail's MIME (loyalty.adapters.mail.build_message), without SES."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from typing import cast

from loyalty.adapters.mail import MAX_LINE, build_message

LINK = "https://abcdefghij.execute-api.eu-west-1.amazonaws.com/v1/invitations/" + "T" * 43 + "/accept"


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=default))


def test_a_message_is_text_then_html_with_links_whole_on_their_lines() -> None:
    # Given a text and an HTML body, each with a link longer than 76 characters
    text = f"Accept:\n{LINK}\n"
    html = f'<p><a href="{LINK}">Accept</a></p>\n'
    # When the message is built
    raw = build_message("club@example.com", "ann@example.com", "Join", text, html)
    message = parse(raw)
    # Then it is multipart/alternative, plain text first, both 7bit (ASCII)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [(p.get_content_type(), str(p["Content-Transfer-Encoding"])) for p in parts] == [
        ("text/plain", "7bit"),
        ("text/html", "7bit"),
    ]
    # And the raw bytes hold the link whole (no soft line break, no =3D), twice
    assert raw.count(LINK.encode()) == 2
    assert (message["From"], message["To"], message["Subject"]) == (
        "club@example.com",
        "ann@example.com",
        "Join",
    )


def test_non_ascii_text_goes_8bit_not_quoted_printable() -> None:
    # When the text names a program with accents
    raw = build_message(
        "a@example.com", "b@example.com", "Join Café", f"Café\n{LINK}\n", "<p>Caf&#233;</p>\n"
    )
    text_part = next(iter(parse(raw).iter_parts()))
    # Then the part is 8bit UTF-8, readable as is, and the subject is encoded as a header must be
    assert str(text_part["Content-Transfer-Encoding"]) == "8bit"
    assert "Café".encode() in raw and LINK.encode() in raw
    assert parse(raw)["Subject"] == "Join Café" and b"Subject: Join =?utf-8?" in raw


def test_a_line_break_in_the_subject_cannot_add_a_header() -> None:
    # When the subject carries a line break (a program name is the business's data)
    raw = build_message("a@example.com", "b@example.com", "Join\r\nBcc: all@example.com", "x\n", "<p>x</p>\n")
    # Then it stays one subject line and no Bcc header appears
    message = parse(raw)
    assert message["Subject"] == "Join Bcc: all@example.com" and message["Bcc"] is None


def test_a_line_too_long_for_smtp_is_left_to_an_encoding_that_can_carry_it() -> None:
    # When a body line is longer than SMTP allows (no template writes one)
    raw = build_message("a@example.com", "b@example.com", "s", "x" * (MAX_LINE + 10) + "\n", "<p>x</p>\n")
    # Then every raw line still fits
    assert max(len(line) for line in raw.splitlines()) <= MAX_LINE
