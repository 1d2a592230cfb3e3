"""What an invitation e-mail says (loyalty.domain.invitation_mail), without AWS."""

from __future__ import annotations

from loyalty.domain.invitation_mail import compose

ACCEPT = "https://loyalty.example.com/v1/invitations/" + "t" * 43 + "/accept"
DECLINE = "https://loyalty.example.com/v1/invitations/" + "t" * 43 + "/decline"


def test_each_link_is_alone_on_its_line_in_both_parts() -> None:
    # When an invitation is composed
    mail = compose("invitation", "Club", ACCEPT, DECLINE, 30)
    # Then each link is a whole line of the text, and a whole attribute of the HTML
    assert ACCEPT in mail.text.splitlines() and DECLINE in mail.text.splitlines()
    assert f'<a href="{ACCEPT}">Accept the invitation</a>' in mail.html.splitlines()
    assert f'<a href="{DECLINE}">Decline it</a>' in mail.html.splitlines()
    # And both say a link opens a page (nothing happens on a click alone), and when it expires
    assert "nothing changes until you press it" in mail.text and "30 days" in mail.html
    assert mail.subject == "Join Club"


def test_the_html_escapes_the_program_name_and_stays_ascii() -> None:
    # Given a program name with markup and accents
    mail = compose("reminder", '<b>Café</b> "&"', ACCEPT, DECLINE, 30)
    # Then the HTML shows it as text, in ASCII; the text part keeps it as it is
    assert "<b>" not in mail.html and "&lt;b&gt;Caf&#233;&lt;/b&gt; &quot;&amp;&quot;" in mail.html
    assert mail.html.isascii()
    assert '<b>Café</b> "&"' in mail.text
    assert mail.subject == 'Reminder: your invitation to <b>Café</b> "&"'


def test_a_business_without_a_program_name() -> None:
    assert compose("invitation", None, ACCEPT, DECLINE, 30).subject == "Join our loyalty program"
