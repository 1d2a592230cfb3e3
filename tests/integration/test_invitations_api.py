"""Invitations through the real lambda_handler on moto: staff invites, settings, answers, runs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.support import Api, Aws, load_event, table_items

ACCOUNT, REGION = "123456789012", "us-east-1"
LINK = re.compile(r"/v1/invitations/([A-Za-z0-9_-]+)/(accept|decline)")


def sent_messages() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def recipients() -> list[str]:
    return [m.destinations["ToAddresses"][0] for m in sent_messages()]


def token_for(email: str) -> str:
    """The token of the latest e-mail sent to `email`, read from the message like a user would."""
    bodies = [m.body for m in sent_messages() if m.destinations["ToAddresses"] == [email]]
    assert bodies, f"no e-mail to {email}"
    links = LINK.findall(bodies[-1])
    assert {kind for _, kind in links} == {"accept", "decline"}
    assert len({token for token, _ in links}) == 1
    return str(links[0][0])


def create(api: Api, business: str = "biz-1", **fields: Any) -> dict[str, Any]:
    return dict(api.ok("POST", "/v1/customers", fields, expect=201, business=business))


def run_invitations(aws: Aws) -> dict[str, Any]:
    from local.runtime import invoke

    return dict(invoke(aws.specs["InvitationFunction"], load_event("invitation/scheduled_run.json")))


def enable(api: Api, business: str = "biz-1", **overrides: Any) -> dict[str, Any]:
    body = {"enabled": True, **overrides}
    return dict(api.ok("PUT", "/v1/settings/invitations", body, role="admin", business=business))


def history(api: Api, customer_id: str) -> list[tuple[str, str | None, str | None]]:
    items = api.ok("GET", f"/v1/customers/{customer_id}/history")["items"]
    return [(e["event"], e["from_status"], e["to_status"]) for e in reversed(items)]


def shift_clock(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    """Move the service's clock forward, as if `days` had passed."""
    from loyalty.domain import clock
    from loyalty.services import invitations

    real = clock.now
    monkeypatch.setattr(invitations, "now", lambda: real() + timedelta(days=days))


# --- settings -----------------------------------------------------------------------------


def test_settings_default_then_put_and_read_back(api: Api) -> None:
    # Given a business that never configured invitations
    # When staff read the settings / Then they get the defaults (runs off, 7 days, 2 reminders)
    got = api.ok("GET", "/v1/settings/invitations")
    assert (got["enabled"], got["batch_size"], got["reminder_after_days"], got["max_reminders"]) == (
        False,
        100,
        7,
        2,
    )
    # When an admin puts new settings
    body = {"enabled": True, "batch_size": 5, "reminder_after_days": 3, "max_reminders": 1}
    put = api.ok("PUT", "/v1/settings/invitations", {**body, "sender": "Club@Example.com"}, role="admin")
    # Then they are stored and read back (sender normalised)
    again = api.ok("GET", "/v1/settings/invitations")
    assert again == put
    assert {k: again[k] for k in body} == body and again["sender"] == "club@example.com"
    # And another business still sees its defaults
    assert api.ok("GET", "/v1/settings/invitations", business="biz-2")["enabled"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10001}, "batch_size"),
        ({"reminder_after_days": 0}, "reminder_after_days"),
        ({"reminder_after_days": 366}, "reminder_after_days"),
        ({"max_reminders": -1}, "max_reminders"),
        ({"max_reminders": 11}, "max_reminders"),
        ({"sender": "not an address"}, "sender"),
        ({"enabled": True, "surprise": 1}, "surprise"),
    ],
)
def test_settings_out_of_range_are_422_naming_the_field(api: Api, body: dict, field: str) -> None:
    # When an admin puts a bad value
    response = api("PUT", "/v1/settings/invitations", body, role="admin")
    # Then it is refused naming the field, and nothing is stored
    assert response.status == 422, response
    assert field in [f["field"] for f in response.body["error"]["details"]["fields"]]
    assert api.ok("GET", "/v1/settings/invitations")["batch_size"] == 100


def test_staff_may_read_but_not_change_settings(api: Api) -> None:
    # When staff try to change the settings / Then 403
    assert api("PUT", "/v1/settings/invitations", {"enabled": True}).status == 403


# --- staff invites ------------------------------------------------------------------------


def test_staff_invite_sends_an_email_and_makes_the_customer_pending(api: Api) -> None:
    # Given an imported customer with an e-mail
    customer = create(api, email="ann@example.com", first_name="Ann")
    # When staff invite them
    invited = api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    # Then the customer is pending with invitation fields set, and one e-mail went out
    assert invited["program_status"] == "pending"
    assert invited["invitation_count"] == 1 and invited["version"] == 2
    assert invited["invited_at"] == invited["last_invited_at"] is not None
    assert recipients() == ["ann@example.com"]
    assert sent_messages()[0].source == "loyalty@example.com"
    # And the token is in the e-mail but in no response and not stored in the clear
    token = token_for("ann@example.com")
    assert token not in str(invited)
    # And the history shows the invitation without personal data
    assert history(api, customer["customer_id"]) == [
        ("import", None, "imported"),
        ("invite", "imported", "pending"),
    ]
    assert "ann" not in str(api.ok("GET", f"/v1/customers/{customer['customer_id']}/history"))


def test_token_is_stored_only_as_a_hash(api: Api, aws: Aws) -> None:
    # Given an invited customer
    customer = create(api, email="ann@example.com")
    api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    token = token_for("ann@example.com")
    # Then no stored item holds the token; the token item is keyed by its hash, with a TTL
    from loyalty.domain.invitations import token_hash

    items = table_items(aws)
    assert token not in str(items)
    tokens = [i for i in items if i.get("entity") == "invitation_token"]
    assert [t["PK"] for t in tokens] == [f"INVTOKEN#{token_hash(token)}"]
    assert isinstance(tokens[0]["ttl"], int) and "email" not in tokens[0]


def test_staff_resend_to_pending_is_a_reminder(api: Api) -> None:
    # Given a pending customer
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    # When staff invite again
    again = api.ok("POST", path)
    # Then a reminder went out, the customer stays pending and counts two e-mails
    assert again["program_status"] == "pending" and again["invitation_count"] == 2
    assert recipients() == ["ann@example.com", "ann@example.com"]
    assert history(api, customer["customer_id"])[-1] == ("remind", "pending", "pending")
    assert "Reminder" in sent_messages()[-1].subject


def test_staff_reinvite_of_inactive_customer(api: Api) -> None:
    # Given a customer who declined (inactive)
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    first_token = token_for("ann@example.com")
    api.ok("POST", f"/v1/invitations/{first_token}/decline", role=None)
    # When staff re-invite them
    again = api.ok("POST", path)
    # Then they are pending again and a new e-mail went out
    assert again["program_status"] == "pending" and again["invitation_count"] == 2
    assert history(api, customer["customer_id"])[-1] == ("reinvite", "inactive", "pending")
    # And the new link accepts, while the old one stays used
    assert api("POST", f"/v1/invitations/{first_token}/accept", role=None).status == 410
    accepted = api.ok("POST", f"/v1/invitations/{token_for('ann@example.com')}/accept", role=None)
    assert accepted["program_status"] == "active"


def test_invite_refusals_change_nothing(api: Api, aws: Aws) -> None:
    # Given a customer without e-mail, and one who already joined
    no_mail = create(api, phone="+4915112345678")
    joined = create(api, email="bo@example.com")
    api.ok("POST", f"/v1/customers/{joined['customer_id']}/invitations")
    api.ok("POST", f"/v1/invitations/{token_for('bo@example.com')}/accept", role=None)
    before = table_items(aws)
    # When staff invite the customer without e-mail / Then 409 explaining why
    response = api("POST", f"/v1/customers/{no_mail['customer_id']}/invitations")
    assert response.status == 409 and "e-mail" in response.body["error"]["message"], response
    # When staff invite the active customer / Then 409 naming the transitions that exist
    response = api("POST", f"/v1/customers/{joined['customer_id']}/invitations")
    assert response.status == 409 and response.body["error"]["code"] == "illegal_transition", response
    # When staff invite an unknown id, or another business's customer / Then 404
    assert api("POST", "/v1/customers/nope/invitations").status == 404
    assert api("POST", f"/v1/customers/{no_mail['customer_id']}/invitations", business="biz-2").status == 404
    # When a customer tries to invite / Then 403
    assert api("POST", f"/v1/customers/{no_mail['customer_id']}/invitations", role="customer").status == 403
    # And nothing was stored or sent by any refusal
    assert table_items(aws) == before
    assert len(sent_messages()) == 1


def test_mail_failure_on_staff_invite_leaves_the_customer_imported(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the business's sender address is not verified in SES
    api.ok("PUT", "/v1/settings/invitations", {"sender": "unverified@example.com"}, role="admin")
    customer = create(api, email="ann@example.com")
    # When staff invite / Then 409 saying the e-mail could not be sent
    response = api("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    assert response.status == 409 and response.body["error"]["code"] == "mail_not_sent", response
    # And the customer is imported as before, with no invitation recorded as sent
    got = api.ok("GET", f"/v1/customers/{customer['customer_id']}")
    assert got["program_status"] == "imported" and got["invitation_count"] == 0 and got["invited_at"] is None
    assert history(api, customer["customer_id"])[-1] == ("invite_not_sent", "pending", "imported")
    assert sent_messages() == []


# --- the invitee answers ------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), [("accept", "active"), ("decline", "inactive")])
def test_answer_with_the_token_from_the_email(api: Api, action: str, status: str) -> None:
    # Given an invited customer
    customer = create(api, email="ann@example.com")
    api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    token = token_for("ann@example.com")
    # When they answer with the link from the e-mail (no bearer token)
    answered = api.ok("POST", f"/v1/invitations/{token}/{action}", role=None)
    # Then their program status follows, audited as done by the invitee
    assert answered == {
        "customer_id": customer["customer_id"],
        "program_status": status,
        "program_name": None,
    }
    assert api.ok("GET", f"/v1/customers/{customer['customer_id']}")["program_status"] == status
    events = api.ok("GET", f"/v1/customers/{customer['customer_id']}/history")["items"]
    assert (events[0]["event"], events[0]["actor"]["role"]) == (action, "invitee")
    # And the same link cannot be used again, for either answer
    for again in ("accept", "decline"):
        used = api("POST", f"/v1/invitations/{token}/{again}", role=None)
        assert used.status == 410 and used.body["error"]["details"]["reason"] == "used", used


def test_unknown_and_expired_tokens(api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an invited customer
    customer = create(api, email="ann@example.com")
    api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    token = token_for("ann@example.com")
    before = table_items(aws)
    # When someone answers with a made-up token / Then 404
    unknown = api("POST", "/v1/invitations/not-a-real-token/accept", role=None)
    assert unknown.status == 404 and unknown.body["error"]["message"] == "unknown invitation link"
    # When the link is answered after it expired (31 days later) / Then 410, nothing changes
    shift_clock(monkeypatch, 31)
    expired = api("POST", f"/v1/invitations/{token}/accept", role=None)
    assert expired.status == 410 and expired.body["error"]["details"]["reason"] == "expired", expired
    assert table_items(aws) == before


def test_a_reminder_keeps_earlier_links_of_the_same_invitation_working(api: Api) -> None:
    # Given a customer invited, then reminded (two e-mails, two links)
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    first = token_for("ann@example.com")
    api.ok("POST", path)
    second = token_for("ann@example.com")
    assert first != second
    # When they answer with the first e-mail's link / Then it works, and the second is then closed
    assert api.ok("POST", f"/v1/invitations/{first}/accept", role=None)["program_status"] == "active"
    closed = api("POST", f"/v1/invitations/{second}/decline", role=None)
    assert closed.status == 410 and closed.body["error"]["details"]["reason"] == "closed"


# --- the scheduled run --------------------------------------------------------------------


def test_scheduled_run_invites_up_to_the_batch_cap_and_only_enabled_businesses(api: Api, aws: Aws) -> None:
    # Given 3 imported customers in an enabled business with a batch cap of 2, one without e-mail,
    # one already active, and an imported customer in a business with runs off
    enable(api, batch_size=2, program_name="Club")
    ids = [create(api, email=f"c{i}@example.com")["customer_id"] for i in range(3)]
    create(api, phone="+4915112345678")
    create(api, email="off@example.com", business="biz-2")
    # When the schedule fires
    report = run_invitations(aws)
    # Then the two oldest imported customers are invited, nobody else
    assert (report["businesses"], report["invited"], report["reminded"], report["failed"]) == (1, 2, 0, 0)
    assert sorted(recipients()) == ["c0@example.com", "c1@example.com"]
    assert "Club" in sent_messages()[0].body
    statuses = [api.ok("GET", f"/v1/customers/{i}")["program_status"] for i in ids]
    assert statuses == ["pending", "pending", "imported"]
    assert history(api, ids[0])[-1] == ("invite", "imported", "pending")
    # When it fires again right away / Then the third is invited and nobody gets a second e-mail
    assert run_invitations(aws)["invited"] == 1
    assert sorted(recipients()) == ["c0@example.com", "c1@example.com", "c2@example.com"]
    assert run_invitations(aws)["invited"] == 0 and len(sent_messages()) == 3


def test_reminders_follow_reminder_days_and_stop_at_max_reminders(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given runs on with reminders after 7 days, at most 1, and an invited customer
    enable(api, reminder_after_days=7, max_reminders=1)
    customer = create(api, email="ann@example.com")
    assert run_invitations(aws)["invited"] == 1
    # When a run comes 6 days later / Then no reminder yet (at most one e-mail per 7 days)
    shift_clock(monkeypatch, 6)
    assert run_invitations(aws)["reminded"] == 0
    # When a run comes 8 days later / Then one reminder
    shift_clock(monkeypatch, 8)
    assert run_invitations(aws)["reminded"] == 1
    got = api.ok("GET", f"/v1/customers/{customer['customer_id']}")
    assert got["program_status"] == "pending" and got["invitation_count"] == 2
    # When runs come 16 and 60 days later / Then no more e-mails: max_reminders was reached
    for days in (16, 60):
        shift_clock(monkeypatch, days)
        assert run_invitations(aws)["reminded"] == 0
    assert recipients() == ["ann@example.com", "ann@example.com"]
    assert [e for e, _, _ in history(api, customer["customer_id"])] == ["import", "invite", "remind"]


def test_scheduler_never_reinvites_inactive_customers(api: Api, aws: Aws) -> None:
    # Given a customer who declined, in a business with runs on
    enable(api)
    customer = create(api, email="ann@example.com")
    api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    api.ok("POST", f"/v1/invitations/{token_for('ann@example.com')}/decline", role=None)
    # When the schedule fires / Then nothing is sent
    assert run_invitations(aws)["invited"] == 0
    assert len(sent_messages()) == 1


def test_mail_failure_for_one_customer_leaves_it_imported_and_the_run_continues(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three imported customers, and SES refusing mail to one of them
    from loyalty.adapters import mail

    enable(api)
    ids = {
        e: create(api, email=e)["customer_id"] for e in ("a@example.com", "b@example.com", "c@example.com")
    }
    real_send = mail.send

    def flaky(sender: str, to: str, subject: str, text: str) -> str:
        if to == "b@example.com":
            raise mail.MailError("Throttling")
        return real_send(sender, to, subject, text)

    monkeypatch.setattr(mail, "send", flaky)
    # When the schedule fires
    report = run_invitations(aws)
    # Then the others are invited and the failed one stays imported, due for the next run
    assert (report["invited"], report["failed"]) == (2, 1)
    assert sorted(recipients()) == ["a@example.com", "c@example.com"]
    got = {e: api.ok("GET", f"/v1/customers/{i}") for e, i in ids.items()}
    assert [got[e]["program_status"] for e in sorted(got)] == ["pending", "imported", "pending"]
    assert got["b@example.com"]["invitation_count"] == 0
    # When SES works again and the next run fires / Then only the failed one is invited
    monkeypatch.setattr(mail, "send", real_send)
    assert run_invitations(aws)["invited"] == 1
    assert sorted(recipients()) == ["a@example.com", "b@example.com", "c@example.com"]


def test_two_runs_at_once_send_each_customer_one_email(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given imported customers, and a second run that starts while the first one is sending
    # (it reads the same due list before the first run's claims are visible to it)
    from loyalty.repository import invitations as repo

    enable(api)
    for i in range(4):
        create(api, email=f"c{i}@example.com")
    real_due = repo.due_customers
    snapshot: list[dict[str, Any]] = []

    def stale_index(business_id: str, now: str, limit: int) -> list[dict[str, Any]]:
        if not snapshot:
            snapshot.extend(real_due(business_id, now, limit))
        return list(snapshot)

    monkeypatch.setattr(repo, "due_customers", stale_index)
    # When two runs process the same due list
    first, second = run_invitations(aws), run_invitations(aws)
    # Then every customer got exactly one e-mail; the second run's claims all failed
    assert (first["invited"], second["invited"], second["skipped"]) == (4, 0, 4)
    assert sorted(recipients()) == [f"c{i}@example.com" for i in range(4)]


def test_sample_scheduled_event_runs_without_enabled_businesses(aws: Aws) -> None:
    # Given no business has runs on / When the schedule's sample event is handled / Then nothing happens
    report = run_invitations(aws)
    assert report["businesses"] == 0 and report["invited"] == 0 and sent_messages() == []


def test_the_token_appears_in_no_log_line(api: Api, aws: Aws, caplog: pytest.LogCaptureFixture) -> None:
    # Given logging at its most verbose
    from loyalty.observability import logger

    logger.setLevel("DEBUG")
    try:
        # When a customer is invited by the run, reminded by staff, and accepts
        enable(api)
        customer = create(api, email="ann@example.com")
        run_invitations(aws)
        first = token_for("ann@example.com")
        api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
        second = token_for("ann@example.com")
        api.ok("POST", f"/v1/invitations/{second}/accept", role=None)
        api("POST", f"/v1/invitations/{second}/accept", role=None)
    finally:
        logger.setLevel("WARNING")
    # Then something was logged, and neither token is in it
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "invitation run finished" in logged
    assert first not in logged and second not in logged


def test_lowering_max_reminders_stops_scheduled_reminders(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer invited while 2 reminders were allowed
    enable(api, max_reminders=2)
    customer = create(api, email="ann@example.com")
    assert run_invitations(aws)["invited"] == 1
    # When the admin allows no reminders, and a run comes after the reminder was due
    enable(api, max_reminders=0)
    shift_clock(monkeypatch, 8)
    report = run_invitations(aws)
    # Then no reminder goes out, the schedule is stopped (audited), and later runs read nothing
    assert (report["reminded"], report["stopped"]) == (0, 1)
    assert len(sent_messages()) == 1
    assert history(api, customer["customer_id"])[-1] == ("reminders_stopped", "pending", "pending")
    assert run_invitations(aws)["stopped"] == 0


def test_run_stops_claiming_when_the_function_is_out_of_time(aws: Aws, api: Api) -> None:
    # Given a due customer, and a function with less time left than one claim needs
    from loyalty.services import invitations

    enable(api)
    customer = create(api, email="ann@example.com")
    # When the run starts / Then it claims nobody and says it ran out of time
    report = invitations.run(time_left=lambda: invitations.SAFETY_SECONDS - 1)
    assert report.out_of_time and report.invited == 0 and sent_messages() == []
    assert api.ok("GET", f"/v1/customers/{customer['customer_id']}")["program_status"] == "imported"
