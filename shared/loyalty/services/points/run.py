"""The scheduled points run (`PointsRun`): pending lots mature, lots past their day expire,
and customers are reminded N days before their points expire.

It reads only the wallets in the sparse due index whose next piece of work has come, so its
cost grows with what is due, not with the table. Each wallet is changed under its version
(a purchase landing at the same moment wins, and the run decides again on fresh data).
A reminder quotes what actually remains of the lot, read consistently right before; it is
recorded on the lot (once per lot and threshold) in the same write as its `points.expiring`
notice, and e-mailed only to customers whose program status allows it and who consented.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from loyalty.adapters import mail
from loyalty.config import settings as env
from loyalty.domain import points
from loyalty.domain.clock import now_iso
from loyalty.domain.lifecycle import Actor, ProgramStatus, may_receive
from loyalty.domain.points import Ledger, Policy, Wallet
from loyalty.domain.principal import actor_record
from loyalty.observability import logger
from loyalty.repository import customers as customers_repo
from loyalty.repository import invitations as invitations_repo
from loyalty.repository import points as repo
from loyalty.repository.base import Transaction
from loyalty.schemas.points import PointsRunReport

RUN_ACTOR = actor_record("points-run", Actor.SCHEDULER)
NOTICE_TTL = timedelta(days=30)
SAFETY_SECONDS = 20.0


def run(time_left: Callable[[], float] | None = None, now: str | None = None) -> PointsRunReport:
    report = PointsRunReport()
    at = now or now_iso()
    policies: dict[str, Policy] = {}
    for indexed in repo.due_wallets(at):
        if time_left is not None and time_left() < SAFETY_SECONDS:
            report.out_of_time = True
            logger.warning("points run stopped for time; the next run continues")
            break
        report.wallets += 1
        bid = indexed["business_id"]
        if bid not in policies:
            policies[bid] = Policy.of(repo.get_settings(bid))
        try:
            _settle(indexed, policies[bid], at, report)
        except repo.WalletMoved:
            logger.info(
                "wallet changed during the run; the next run sees it",
                extra={"customer_id": indexed["customer_id"]},
            )
    logger.info("points run finished", extra=report.model_dump())
    return report


def _settle(wallet: Wallet, policy: Policy, now: str, report: PointsRunReport) -> None:
    """Activate and expire from the indexed copy; remind from a consistent read."""
    ledger = Ledger(wallet, now)
    ledger.settle_time()
    for entry in ledger.entries:
        if entry.type is points.EntryType.EXPIRE:
            report.expired_lots += len(entry.lots)
        elif entry.type is points.EntryType.ACTIVATE:
            report.activated_lots += len(entry.lots)
    if points.due_reminders(ledger.wallet, policy, now):
        fresh = repo.get_wallet(wallet["business_id"], wallet["customer_id"], consistent=True)
        if fresh is None:
            return
        ledger = Ledger(fresh, now)
        ledger.settle_time()
        _remind(ledger, fresh, policy, now, report)
    else:
        _write(ledger, wallet, policy, now, [])


def _write(ledger: Ledger, before: Wallet, policy: Policy, now: str, notices: list[dict[str, Any]]) -> None:
    ledger.wallet["time_zone"] = policy.time_zone
    change = ledger.done()
    first = int(before.get("seq") or 0) + 1
    tx = Transaction()
    repo.stage_wallet(
        tx, change.wallet, int(before.get("version") or 0), True, points.next_due(change.wallet, policy)
    )
    repo.stage_entries(
        tx,
        [
            repo.entry_item(change.wallet, first + i, e, occurred_at=now, recorded_at=now, actor=RUN_ACTOR)
            for i, e in enumerate(change.entries)
        ],
    )
    for notice in notices:
        tx.put(notice, "attribute_not_exists(PK)")
    repo.commit(tx)


def _remind(ledger: Ledger, before: Wallet, policy: Policy, now: str, report: PointsRunReport) -> None:
    wallet = ledger.wallet
    bid, cid = wallet["business_id"], wallet["customer_id"]
    due = points.due_reminders(wallet, policy, now)
    notices: list[dict[str, Any]] = []
    for lot, threshold in due:
        expires = points.lot_expiry(lot, wallet)
        notice_id = f"{lot['lot_id']}#{threshold}"
        notices.append(
            repo.notice_item(
                bid,
                cid,
                notice_id,
                {
                    "notice": "points.expiring",
                    "lot_id": lot["lot_id"],
                    "points": lot["remaining"],  # what actually remains, read just now
                    "expires_at": expires,
                    "days": threshold,
                    "at": now,
                },
                int(time.time() + NOTICE_TTL.total_seconds()),
            )
        )
        points.mark_reminded(lot, threshold, policy)
    _write(ledger, before, policy, now, notices)  # recorded first: a retried run sends nothing twice
    profile = customers_repo.get_profile(bid, cid)
    status = ProgramStatus(profile["program_status"]) if profile else None
    consent = bool(profile and profile.get("marketing_consent"))
    if (
        profile is None
        or status is None
        or not profile.get("email")
        or not may_receive(status, "points", consent)
    ):
        report.reminders_skipped += len(notices)
        return
    sender = (invitations_repo.get_settings(bid) or {}).get("sender") or env().mail_sender
    total = sum(int(n["points"]) for n in notices)
    soonest = min(str(n["expires_at"]) for n in notices)
    day = points.parse(soonest).astimezone(policy.zone).date().isoformat()
    try:
        mail.send(
            str(sender),
            str(profile["email"]),
            f"{total} of your points expire on {day}",
            f"You have {total} points that expire at the end of {day}.\n"
            "Use them before then to keep their value.\n",
        )
        report.reminders_sent += len(notices)
    except mail.MailError as failed:
        logger.warning("points reminder not sent", extra={"customer_id": cid, "mail_error": failed.code})
        report.reminders_skipped += len(notices)
