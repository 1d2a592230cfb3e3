"""Invitations through the real lambda_handler on moto: staff invites, settings, answers, runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support import Api, Aws, load_event, table_items
from tests.support.invitations import (
    parsed,
    recipients,
    sent_messages,
    text_of,
    token_for,
    verify_identity,
)


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
    # When an admin puts new settings, with a sender SES has verified
    verify_identity("club@example.com")
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


def test_settings_refuse_a_sender_ses_cannot_send_from(api: Api) -> None:
    # Given an address SES never verified (nor its domain)
    # When an admin saves it as the sender / Then 422 naming `sender`, and nothing is stored
    response = api(
        "PUT", "/v1/settings/invitations", {"enabled": True, "sender": "club@nowhere.example"}, role="admin"
    )
    assert response.status == 422, response
    (failed,) = response.body["error"]["details"]["fields"]
    assert failed["field"] == "sender" and "nowhere.example" in failed["message"]
    assert api.ok("GET", "/v1/settings/invitations")["enabled"] is False


def test_a_sender_on_a_verified_domain_is_accepted_and_sends(api: Api) -> None:
    # Given SES has verified the domain (not the address)
    verify_identity("club.example.org")
    # When an admin saves an address of that domain, and staff invite a customer
    api.ok("PUT", "/v1/settings/invitations", {"sender": "news@club.example.org"}, role="admin")
    customer = create(api, email="ann@example.com")
    api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
    # Then the invitation goes out from it
    assert [str(parsed(m)["From"]) for m in sent_messages()] == ["news@club.example.org"]
    # And settings without a sender (the deployment's default sender) need no check
    assert api.ok("PUT", "/v1/settings/invitations", {"enabled": True}, role="admin")["sender"] is None


def test_a_pending_verification_and_an_unreachable_ses_are_said_so(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.adapters import mail

    # Given SES answers that the domain's verification is pending
    monkeypatch.setattr(mail, "verification_statuses", lambda ids: {"club.example.org": "Pending"})
    # When an admin saves an address of it / Then 422 naming `sender`, saying it is pending
    response = api("PUT", "/v1/settings/invitations", {"sender": "a@club.example.org"}, role="admin")
    assert response.status == 422 and "pending" in response.body["error"]["message"], response

    # Given SES cannot be asked at all
    def unreachable(identities: list[str]) -> dict[str, str]:
        raise mail.MailError("ServiceUnavailable")

    monkeypatch.setattr(mail, "verification_statuses", unreachable)
    # When an admin saves a sender / Then 503 (retry later), never a 500
    response = api("PUT", "/v1/settings/invitations", {"sender": "a@club.example.org"}, role="admin")
    assert response.status == 503 and response.body["error"]["details"]["field"] == "sender", response


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


def test_staff_resend_to_pending_is_a_reminder(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a customer invited 7 days ago (the cadence allows one e-mail per 7 days)
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    shift_clock(monkeypatch, 7)
    # When staff invite again
    again = api.ok("POST", path)
    # Then a reminder went out, the customer stays pending and counts two e-mails
    assert again["program_status"] == "pending" and again["invitation_count"] == 2
    assert recipients() == ["ann@example.com", "ann@example.com"]
    assert history(api, customer["customer_id"])[-1] == ("remind", "pending", "pending")
    assert "Reminder" in str(parsed(sent_messages()[-1])["Subject"])


def test_staff_reinvite_of_inactive_customer(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a customer who declined (inactive) an invitation sent a week ago
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    first_token = token_for("ann@example.com")
    api.ok("POST", f"/v1/invitations/{first_token}/decline", role=None)
    shift_clock(monkeypatch, 7)
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
    # Given the business's sender was verified when saved, and SES no longer has it since
    import boto3

    verify_identity("revoked@example.com")
    api.ok("PUT", "/v1/settings/invitations", {"sender": "revoked@example.com"}, role="admin")
    boto3.client("ses").delete_identity(Identity="revoked@example.com")
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


def test_a_reminder_keeps_earlier_links_of_the_same_invitation_working(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer invited, then reminded a week later (two e-mails, two links)
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    first = token_for("ann@example.com")
    shift_clock(monkeypatch, 7)
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
    assert "Club" in text_of(sent_messages()[0])
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
    real_send = mail.send_alternative

    def flaky(sender: str, to: str, subject: str, text: str, html: str) -> str:
        if to == "b@example.com":
            raise mail.MailError("Throttling")
        return real_send(sender, to, subject, text, html)

    monkeypatch.setattr(mail, "send_alternative", flaky)
    # When the schedule fires
    report = run_invitations(aws)
    # Then the others are invited and the failed one stays imported, due for the next run
    assert (report["invited"], report["failed"]) == (2, 1)
    assert sorted(recipients()) == ["a@example.com", "c@example.com"]
    got = {e: api.ok("GET", f"/v1/customers/{i}") for e, i in ids.items()}
    assert [got[e]["program_status"] for e in sorted(got)] == ["pending", "imported", "pending"]
    assert got["b@example.com"]["invitation_count"] == 0
    # When SES works again and the next run fires / Then only the failed one is invited
    monkeypatch.setattr(mail, "send_alternative", real_send)
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


def test_the_token_appears_in_no_log_line(
    api: Api, aws: Aws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given logging at its most verbose
    from loyalty.observability import logger

    logger.setLevel("DEBUG")
    try:
        # When a customer is invited by the run, reminded by staff, and accepts
        enable(api)
        customer = create(api, email="ann@example.com")
        run_invitations(aws)
        first = token_for("ann@example.com")
        shift_clock(monkeypatch, 7)
        api.ok("POST", f"/v1/customers/{customer['customer_id']}/invitations")
        second = token_for("ann@example.com")
        api("GET", f"/v1/invitations/{second}/accept", role=None)
        api.ok("POST", f"/v1/invitations/{second}/accept", role=None)
        api("POST", f"/v1/invitations/{second}/accept", role=None, headers={"accept": "text/html"})
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


# --- cadence: at most one invitation e-mail per reminder_after_days ------------------------


def test_a_second_invitation_within_the_cadence_is_too_soon(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a business with 3 days between invitation e-mails, and a customer invited just now
    api.ok("PUT", "/v1/settings/invitations", {"reminder_after_days": 3}, role="admin")
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    first = api.ok("POST", path)
    before = table_items(aws)
    # When staff invite again at once, and again 2 days later
    for days in (0, 2):
        shift_clock(monkeypatch, days)
        response = api("POST", path)
        # Then 409 too_soon, naming when the next e-mail may go out
        assert response.status == 409 and response.body["error"]["code"] == "too_soon", response
        details = response.body["error"]["details"]
        assert details["last_invited_at"] == first["last_invited_at"]
        assert details["next_allowed_at"] == _plus_days(first["last_invited_at"], 3)
    # And nothing changed, and no second e-mail went out
    assert table_items(aws) == before and recipients() == ["ann@example.com"]
    # When staff invite 3 days later / Then the reminder goes out
    shift_clock(monkeypatch, 3)
    assert api.ok("POST", path)["invitation_count"] == 2


def _plus_days(timestamp: str, days: int) -> str:
    from datetime import datetime

    from loyalty.domain.clock import iso

    return iso(datetime.fromisoformat(timestamp) + timedelta(days=days))


def test_an_admin_may_override_the_cadence_and_the_history_keeps_why(api: Api) -> None:
    # Given a customer invited just now
    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    override = {"override_cadence": True, "reason": "lost the first e-mail, asked at the desk"}
    # When staff try to override / Then 403: only an admin may
    assert api("POST", path, override).status == 403
    # When an admin overrides without a reason / Then 422 naming `reason`
    response = api("POST", path, {"override_cadence": True}, role="admin")
    assert response.status == 422, response
    assert [f["field"] for f in response.body["error"]["details"]["fields"]] == ["reason"]
    # When an admin overrides with a reason
    sent = api.ok("POST", path, override, role="admin")
    # Then the reminder goes out, and the history names the override and its reason
    assert sent["invitation_count"] == 2 and recipients() == ["ann@example.com"] * 2
    latest = api.ok("GET", f"/v1/customers/{customer['customer_id']}/history")["items"][0]
    assert latest["event"] == "remind" and latest["reason"] == override["reason"]
    assert latest["details"]["cadence_override"] is True and latest["actor"]["role"] == "admin"
    # And without the override the cadence still holds; an empty body is an ordinary invite
    assert api("POST", path, {}).body["error"]["code"] == "too_soon"
    assert api("POST", path, {"override": True}, role="admin").status == 422


def test_the_cadence_is_a_condition_of_the_write_not_only_a_check_before_it(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer invited just now, and a read that misses that e-mail (as a read racing
    # a concurrent send could): the check before the write then sees no recent e-mail
    from loyalty.repository import customers as customers_repo
    from loyalty.services import invitations

    customer = create(api, email="ann@example.com")
    path = f"/v1/customers/{customer['customer_id']}/invitations"
    api.ok("POST", path)
    before = table_items(aws)
    real = customers_repo.require_profile

    def stale(business_id: str, customer_id: str, consistent: bool = True) -> Any:
        profile = dict(real(business_id, customer_id, consistent))
        profile.pop("last_invited_at")
        return profile

    monkeypatch.setattr(invitations.customers_repo, "require_profile", stale)
    # When staff invite again
    response = api("POST", path)
    # Then DynamoDB refuses the claim: 409 too_soon, nothing written, no second e-mail
    assert response.status == 409 and response.body["error"]["code"] == "too_soon", response
    assert table_items(aws) == before and len(sent_messages()) == 1


def test_the_run_keeps_the_cadence_when_it_grew_after_a_reminder_was_scheduled(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer invited by the run while reminders came after 7 days
    enable(api, reminder_after_days=7)
    customer = create(api, email="ann@example.com")
    assert run_invitations(aws)["invited"] == 1
    # When the admin asks for 10 days between e-mails, and the run comes 8 days later
    enable(api, reminder_after_days=10)
    shift_clock(monkeypatch, 8)
    report = run_invitations(aws)
    # Then the customer (due by the old schedule) is skipped, not e-mailed
    assert (report["reminded"], report["skipped"]) == (0, 1) and len(sent_messages()) == 1
    # When the run comes 10 days after the e-mail / Then the reminder goes out
    shift_clock(monkeypatch, 10)
    assert run_invitations(aws)["reminded"] == 1
    assert api.ok("GET", f"/v1/customers/{customer['customer_id']}")["invitation_count"] == 2
