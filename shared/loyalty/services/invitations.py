"""Invitation use cases (docs/design.md#invitations): settings, staff invites, the scheduled run,
the page behind a link, accept and decline.

Exactly once per customer and run: the customer is claimed by committing the transition
(profile under its version condition, the token item, the audit event: one transaction)
BEFORE the e-mail goes out. A concurrent or retried run reads a stale index entry at
most, and its claim then fails the version condition, so it sends nothing. The claim is
also conditioned on the cadence (no e-mail within `reminder_after_days`), so the rule
holds whatever was read. When the mail service refuses the e-mail, a compensating
transaction puts the invitation fields back (the customer stays imported and keeps its
due time) and deletes the unused token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from loyalty.adapters import mail
from loyalty.config import settings as env
from loyalty.domain.clock import iso, now
from loyalty.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    Unavailable,
    VersionConflict,
    field_error,
)
from loyalty.domain.invitation_mail import compose
from loyalty.domain.invitations import (
    TOKEN_LIFETIME,
    SendPlan,
    new_token,
    plan_send,
    restored,
    token_hash,
    token_problem,
    too_soon,
)
from loyalty.domain.lifecycle import Actor, AuditKind, LifecycleEvent, ProgramStatus, apply
from loyalty.domain.principal import (
    ADMINS,
    BACK_OFFICE,
    INVITEE_ACTOR,
    MAILER_ACTOR,
    SCHEDULER_ACTOR,
    Principal,
    Role,
)
from loyalty.domain.records import ActorRecord, InvitationTokenRecord, ProfileRecord, updated
from loyalty.observability import INVITATIONS_NOT_SENT, INVITATIONS_SENT, count, logger
from loyalty.repository import customers as customers_repo
from loyalty.repository import invitations as repo
from loyalty.repository.base import Transaction, TransactionCancelled
from loyalty.schemas.customers import Customer
from loyalty.schemas.invitations import (
    InvitationAnswer,
    InvitationLink,
    InvitationSettings,
    InvitationSettingsView,
    InviteRequest,
    RunReport,
)
from loyalty.services.customers import to_customer

# Stop claiming new customers when the function has less than this left to finish one.
SAFETY_SECONDS = 20.0


class MailNotSent(Conflict):
    code = "mail_not_sent"


# --- settings -------------------------------------------------------------------------


def load_settings(business_id: str) -> InvitationSettingsView:
    stored = repo.get_settings(business_id)
    if stored is None:
        return InvitationSettingsView()
    fields = InvitationSettingsView.model_fields
    return InvitationSettingsView.model_validate({k: v for k, v in stored.items() if k in fields})


def get_settings(principal: Principal) -> InvitationSettingsView:
    principal.require(BACK_OFFICE)
    return load_settings(principal.business_id)


def put_settings(principal: Principal, body: InvitationSettings) -> InvitationSettingsView:
    principal.require(ADMINS)
    if body.sender is not None:
        _check_sender(body.sender)
    stored = repo.put_settings(principal.business_id, body.model_dump(), iso(now()))
    return InvitationSettingsView.model_validate(
        {k: v for k, v in stored.items() if k in InvitationSettingsView.model_fields}
    )


def _check_sender(sender: str) -> None:
    """Refuse (422 naming `sender`) an address SES would not send from: neither it nor its
    domain is a verified identity. Otherwise every invitation would fail at sending."""
    domain = sender.rpartition("@")[2]
    try:
        statuses = mail.verification_statuses([sender, domain])
    except mail.MailError as failed:
        raise Unavailable(
            "the mail service could not confirm the sender; retry shortly",
            {"field": "sender", "mail_error": failed.code},
        ) from failed
    if "Success" in (statuses.get(sender), statuses.get(domain)):
        return
    pending = [identity for identity in (sender, domain) if statuses.get(identity) == "Pending"]
    if pending:
        raise field_error(
            "sender", f"SES cannot send from {sender} yet: the verification of {pending[0]} is pending"
        )
    raise field_error(
        "sender", f"SES cannot send from {sender}: verify the address or its domain {domain} in SES first"
    )


# --- sending one invitation -----------------------------------------------------------


def _cadence_guard(plan: SendPlan, settings: InvitationSettings, at: datetime) -> customers_repo.Guard | None:
    """The cadence as a condition of the claim: DynamoDB refuses it if an e-mail went out since."""
    if plan.cadence_cutoff is None:
        return None

    def refused(stored: ProfileRecord) -> DomainError:
        last = stored.get("last_invited_at")
        problem = too_soon(str(last) if last else None, settings, at, stored["customer_id"])
        return problem or Conflict("the customer changed while it was being invited; retry")

    return customers_repo.Guard(
        "attribute_not_exists(last_invited_at) OR last_invited_at <= :cadence_cutoff",
        {":cadence_cutoff": plan.cadence_cutoff},
        refused,
    )


def send_one(
    profile: ProfileRecord,
    plan: SendPlan,
    settings: InvitationSettings,
    actor: ActorRecord,
    at: datetime,
    reason: str | None = None,
) -> ProfileRecord:
    """Claim (commit the transition), then e-mail; undo the claim when the e-mail fails.

    Raises VersionConflict when someone else changed or claimed the customer first, TooSoon
    when an e-mail went out within the cadence meanwhile, and MailNotSent when the mail
    service refused the message.
    """
    token, hashed = new_token()
    after = updated(customers_repo.strip_keys(profile), plan.updates)
    invited_at = str(after["invited_at"])
    token_record = repo.token_item(
        hashed,
        profile,
        invited_at,
        iso(at + TOKEN_LIFETIME),
        int((at + TOKEN_LIFETIME).timestamp()),
        plan.kind,
    )
    details: dict[str, object] = {
        "kind": plan.kind,
        "invitation_count": plan.updates["invitation_count"],
        "reminders_sent": plan.updates["reminders_sent"],
    }
    if plan.cadence_cutoff is None:
        details["cadence_override"] = True
    entry = customers_repo.AuditEntry(
        AuditKind(plan.event), actor, profile["program_status"], plan.target.value, reason, details
    )
    stored = customers_repo.commit(
        customers_repo.Write(
            after=after,
            before=profile,
            entry=entry,
            extra=lambda tx: repo.stage_token_put(tx, token_record),
            identifiers=(),
            guard=_cadence_guard(plan, settings, at),
        )
    )
    base = env().public_base_url.rstrip("/")
    message = compose(
        plan.kind,
        settings.program_name,
        f"{base}/v1/invitations/{token}/accept",
        f"{base}/v1/invitations/{token}/decline",
        TOKEN_LIFETIME.days,
    )
    try:
        mail.send_alternative(
            settings.sender or env().mail_sender,
            str(profile["email"]),
            message.subject,
            message.text,
            message.html,
        )
    except mail.MailError as failed:
        logger.warning(
            "invitation e-mail not sent; undoing the claim",
            extra={"customer_id": profile["customer_id"], "mail_error": failed.code},
        )
        _undo_claim(stored, profile, hashed, failed.code)
        count(INVITATIONS_NOT_SENT, 1, plan.kind)
        raise MailNotSent(
            "the invitation e-mail could not be sent; the customer was left unchanged",
            {"customer_id": profile["customer_id"], "mail_error": failed.code},
        ) from failed
    count(INVITATIONS_SENT, 1, plan.kind)
    return stored


def _undo_claim(stored: ProfileRecord, before: ProfileRecord, hashed: str, code: str) -> None:
    current = stored
    for _ in range(3):
        entry = customers_repo.AuditEntry(
            AuditKind.INVITE_NOT_SENT,
            MAILER_ACTOR,
            current["program_status"],
            before["program_status"],
            details={"mail_error": code},
        )
        write = customers_repo.Write(
            after=restored(customers_repo.strip_keys(current), before),
            before=current,
            entry=entry,
            extra=lambda tx: repo.stage_token_delete(tx, hashed),
            identifiers=(),
        )
        try:
            customers_repo.commit(write)
            return
        except VersionConflict:
            fresh = customers_repo.get_profile(before["business_id"], before["customer_id"], consistent=True)
            # Only undo what is still ours: someone may have moved the customer on since.
            if (
                fresh is None
                or fresh.get("program_status") != stored["program_status"]
                or fresh.get("invitation_count") != stored.get("invitation_count")
            ):
                break
            current = fresh
    logger.error("could not undo an invitation claim", extra={"customer_id": before["customer_id"]})


def invite(principal: Principal, customer_id: str, body: InviteRequest | None = None) -> Customer:
    """Staff: invite an imported customer, resend to a pending one, re-invite an inactive one.

    At most one e-mail per `reminder_after_days` (409 `too_soon`), unless an admin
    overrides the cadence with a reason that the history keeps.
    """
    principal.require(BACK_OFFICE)
    request = body or InviteRequest()
    if request.override_cadence:
        principal.require({Role.ADMIN})
    profile = customers_repo.require_profile(principal.business_id, customer_id)
    settings = load_settings(principal.business_id)
    at = now()
    plan = plan_send(profile, settings, at, principal.actor, override_cadence=request.override_cadence)
    stored = send_one(profile, plan, settings, principal.as_actor_record(), at, request.reason)
    return to_customer(stored, principal)


# --- the scheduled run ------------------------------------------------------------------


def run(time_left: Callable[[], float] | None = None) -> RunReport:
    """Invite and remind, per enabled business, at most batch_size customers each."""
    report = RunReport()
    at = now()
    at_iso = iso(at)
    for item in repo.enabled_settings():
        report.businesses += 1
        business_id = str(item["business_id"])
        fields = InvitationSettings.model_fields
        settings = InvitationSettings.model_validate({k: v for k, v in item.items() if k in fields})
        for profile in repo.due_customers(business_id, at_iso, settings.batch_size):
            if time_left is not None and time_left() < SAFETY_SECONDS:
                report.out_of_time = True
                logger.warning("invitation run stopped for time; the next run continues")
                return report
            _run_one(profile, settings, at, report)
    logger.info("invitation run finished", extra=report.model_dump())
    return report


def _run_one(profile: ProfileRecord, settings: InvitationSettings, at: datetime, report: RunReport) -> None:
    pending = profile.get("program_status") == ProgramStatus.PENDING.value
    if pending and int(profile.get("reminders_sent") or 0) >= settings.max_reminders:
        # Settings lowered max_reminders since this reminder was scheduled.
        _stop_reminders(profile, report)
        return
    try:
        plan = plan_send(profile, settings, at, Actor.SCHEDULER)
        send_one(profile, plan, settings, SCHEDULER_ACTOR, at)
    except MailNotSent:
        report.failed += 1
        return
    except DomainError as skipped:
        # Claimed by a concurrent run, changed since the index was read, or no longer invitable.
        logger.info("customer skipped", extra={"customer_id": profile["customer_id"], "reason": skipped.code})
        report.skipped += 1
        return
    if plan.event is LifecycleEvent.REMIND:
        report.reminded += 1
    else:
        report.invited += 1


def _stop_reminders(profile: ProfileRecord, report: RunReport) -> None:
    after: ProfileRecord = {**customers_repo.strip_keys(profile), "invite_due_at": None}
    entry = customers_repo.AuditEntry(
        AuditKind.REMINDERS_STOPPED,
        SCHEDULER_ACTOR,
        profile["program_status"],
        profile["program_status"],
        details={"reminders_sent": int(profile.get("reminders_sent") or 0)},
    )
    try:
        customers_repo.commit(customers_repo.Write(after=after, before=profile, entry=entry, identifiers=()))
        report.stopped += 1
    except DomainError:
        report.skipped += 1


# --- the invitee answers ----------------------------------------------------------------


def _open(hashed: str, at: str) -> tuple[InvitationTokenRecord, ProfileRecord]:
    """The token and its customer, while the link can still be answered (404 or 410 otherwise)."""
    token_record = repo.get_token(hashed)
    if token_record is None:
        raise NotFound("unknown invitation link", {"reason": "unknown"})
    business_id, customer_id = str(token_record["business_id"]), str(token_record["customer_id"])
    profile = customers_repo.get_profile(business_id, customer_id, consistent=True)
    problem = token_problem(token_record, profile, at)
    if problem is not None:
        raise problem
    assert profile is not None
    return token_record, profile


def open_link(token: str, event: LifecycleEvent) -> InvitationLink:
    """What the page behind an e-mail link shows. Reads only: mail scanners open links."""
    token_record, profile = _open(token_hash(token), iso(now()))
    apply(event, ProgramStatus(profile["program_status"]), Actor.INVITEE)  # the button must be able to work
    program = load_settings(str(token_record["business_id"])).program_name
    return InvitationLink(
        choice="accept" if event is LifecycleEvent.ACCEPT else "decline", program_name=program
    )


def answer(token: str, event: LifecycleEvent) -> InvitationAnswer:
    """Accept or decline with the token from the e-mail; single use, in one transaction."""
    hashed = token_hash(token)
    for _ in range(3):
        at = iso(now())
        token_record, profile = _open(hashed, at)
        business_id, customer_id = str(token_record["business_id"]), str(token_record["customer_id"])
        target = apply(event, ProgramStatus(profile["program_status"]), Actor.INVITEE)
        after: ProfileRecord = {
            **customers_repo.strip_keys(profile),
            "program_status": target.value,
            "invite_due_at": None,
        }
        entry = customers_repo.AuditEntry(
            AuditKind(event), INVITEE_ACTOR, profile["program_status"], target.value, details={"via": "token"}
        )
        tx = Transaction()
        customers_repo.stage(
            tx, customers_repo.Write(after=after, before=profile, entry=entry, identifiers=()), at
        )
        token_index = repo.stage_token_use(tx, hashed, event.value, at)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if token_index in cancelled.failed_indexes():
                continue  # used or expired meanwhile: the next pass says which
            error = customers_repo.explain_cancellation(tx, cancelled, customer_id)
            if isinstance(error, VersionConflict):
                continue  # the profile changed meanwhile: decide again on fresh data
            raise error from cancelled
        program = load_settings(business_id).program_name
        return InvitationAnswer(customer_id=customer_id, program_status=target, program_name=program)
    raise Conflict("the invitation changed while it was being answered; retry")
