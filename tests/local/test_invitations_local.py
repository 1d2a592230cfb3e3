"""Invitations on the local stack as a person meets them: a sender verified locally, the
e-mail in the outbox, and its link opened in a real browser (headless Chromium from the
distribution's packages, driven by Selenium): the page, one click, the confirmation, and
a link that was already used.

`.ci/run` installs `chromium` and `chromium-driver` when they are missing; the browser
test skips (saying why) only where they are not installed.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any, cast

import pytest
import requests

from local.stack import LocalStack

pytestmark = pytest.mark.local

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
PROGRAM = 'Café <b>"Club"</b> & Co'  # shown as text, never as markup


def _business() -> str:
    return f"biz-{uuid.uuid4().hex[:8]}"


def _outbox_mail(stack: LocalStack, address: str) -> tuple[EmailMessage, bytes]:
    """The one e-mail to `address` in the stack's outbox: parsed, and its raw bytes."""
    found = []
    for path in stack.outbox():
        raw = path.read_bytes()
        message = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
        if str(message["To"]) == address:
            found.append((message, raw))
    assert len(found) == 1, f"{len(found)} e-mails to {address}"
    return found[0]


def test_a_sender_is_accepted_once_verified_in_the_local_ses(local_stack: LocalStack) -> None:
    # Given an admin, and an address the stack's SES does not know
    admin = local_stack.auth("admin", _business())
    settings = local_stack.url("/v1/settings/invitations")
    sender = f"club-{uuid.uuid4().hex[:6]}@example.org"
    # When it is saved as the sender / Then 422 naming `sender`
    refused = requests.put(settings, json={"sender": sender}, headers=admin, timeout=30)
    assert refused.status_code == 422, refused.text
    assert [f["field"] for f in refused.json()["error"]["details"]["fields"]] == ["sender"]
    # When it is verified as the README says, and saved again / Then accepted
    identities = local_stack.url("/_local/ses/identities")
    verified = requests.post(identities, json={"identity": sender}, timeout=10)
    assert verified.status_code == 200 and sender in verified.json()["items"], verified.text
    assert (
        requests.put(settings, json={"sender": sender}, headers=admin, timeout=30).json()["sender"] == sender
    )
    # And a verified domain covers its addresses; the default sender is listed from the start
    assert requests.post(identities, json={"identity": "Mail.Example.net"}, timeout=10).status_code == 200
    ok = requests.put(settings, json={"sender": "news@mail.example.net"}, headers=admin, timeout=30)
    assert ok.status_code == 200, ok.text
    assert "loyalty@example.com" in requests.get(identities, timeout=10).json()["items"]
    # And a body without an identity is a 422, not a 500
    assert requests.post(identities, json={"identity": ""}, timeout=10).status_code == 422
    assert requests.post(identities, data=b"not json", timeout=10).status_code == 422


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "needs Chromium and its driver: apt-get install chromium chromium-driver "
            "(.ci/run installs them when it can)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    # The distribution's driver: Selenium Manager must not download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_an_invitation_link_from_the_outbox_accepts_with_one_click_in_a_browser(
    local_stack: LocalStack, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    # Given a business that names its program, and a customer staff invited
    business = _business()
    admin, staff = local_stack.auth("admin", business), local_stack.auth("staff", business)
    put = requests.put(
        local_stack.url("/v1/settings/invitations"), json={"program_name": PROGRAM}, headers=admin, timeout=30
    )
    assert put.status_code == 200, put.text
    address = f"ann.{business}@example.com"
    created = requests.post(
        local_stack.url("/v1/customers"), json={"email": address}, headers=staff, timeout=30
    )
    customer = local_stack.url(f"/v1/customers/{created.json()['customer_id']}")
    invited = requests.post(f"{customer}/invitations", headers=staff, timeout=30)
    assert invited.status_code == 200, invited.text
    local_stack.wait_idle()

    # And the accept link as a person copies it from the .eml file (raw, not decoded)
    message, raw = _outbox_mail(local_stack, address)
    assert message.get_content_type() == "multipart/alternative"
    links = re.findall(rb"http://\S+/v1/invitations/[A-Za-z0-9_-]+/accept", raw)
    assert links, raw.decode(errors="replace")
    link = links[0].decode()
    assert link.startswith(local_stack.base_url)

    # When the link is opened in the browser (and again in a second tab, left open)
    browser.get(link)
    first_tab = browser.current_window_handle
    # Then the page names the program as text, with the choice and a button
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Join {PROGRAM}"
    button = browser.find_element(By.ID, "answer")
    assert button.text == "Accept the invitation"
    browser.switch_to.new_window("tab")
    browser.get(link)
    second_tab = browser.current_window_handle
    # And opening it changed nothing
    assert requests.get(customer, headers=staff, timeout=30).json()["program_status"] == "pending"

    # When Accept is clicked, once
    browser.switch_to.window(first_tab)
    browser.find_element(By.ID, "answer").click()
    # Then the confirmation shows, and the API says the customer is active
    result = WebDriverWait(browser, 15).until(until.presence_of_element_located((By.ID, "result")))
    assert result.text == "You accepted the invitation: your membership is active."
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Welcome to {PROGRAM}"
    assert requests.get(customer, headers=staff, timeout=30).json()["program_status"] == "active"

    # When the button of the tab left open is clicked too
    browser.switch_to.window(second_tab)
    browser.find_element(By.ID, "answer").click()
    # Then a page says the link was already used
    WebDriverWait(browser, 15).until(until.text_to_be_present_in_element((By.TAG_NAME, "h1"), "already used"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "This link was already used"
    browser.close()
    browser.switch_to.window(first_tab)

    # When the link is visited again / Then the same, with no button left to press
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "This link was already used"
    assert browser.find_elements(By.ID, "answer") == []
    # And the customer is still active, accepted once
    history = requests.get(f"{customer}/history", headers=staff, timeout=30).json()["items"]
    assert [e["event"] for e in history].count("accept") == 1
    # And the stack's log shows the link's path without its token
    token = link.rsplit("/", 2)[-2]
    assert "/v1/invitations/***/accept" in local_stack.log_tail(10**7)
    assert token not in local_stack.log_tail(10**7)
