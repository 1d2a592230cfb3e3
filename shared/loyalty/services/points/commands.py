"""Points commands: earn, return, redeem (hold, capture, void), reverse, adjust.

Each is one DynamoDB transaction after one read (repository.points), idempotent on the
caller's `external_id`: the same id with the same body answers the first answer again
(`replayed: true`), the same id with another body is 409 `duplicate`. A lost race (the
wallet or the customer changed between the read and the write) is read again and decided
again, so concurrent redemptions never spend the same points twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from loyalty.domain import cards, points, tiers
from loyalty.domain.clock import iso, now_iso
from loyalty.domain.errors import Conflict, Duplicate, NotFound, field_error
from loyalty.domain.lifecycle import ProgramStatus, can_earn, can_redeem
from loyalty.domain.points import EntryType, Ledger, Policy
from loyalty.domain.principal import ADMINS, BACK_OFFICE, Principal
from loyalty.domain.ranked_statuses import entitlements
from loyalty.observability import POINTS_EARNED, POINTS_REDEEMED, POINTS_REDEMPTIONS_REVERSED, count
from loyalty.repository import cards as card_repo
from loyalty.repository import points as repo
from loyalty.repository.base import Transaction
from loyalty.schemas.points import (
    Adjustment,
    BalanceView,
    LedgerEntry,
    PointsResult,
    Purchase,
    PurchaseReturn,
    Redemption,
)
from loyalty.services.tiers import moves as tier_moves

ATTEMPTS = 25  # a wallet many requests spend from at once is read again until each decides


class NotEligible(Conflict):
    code = "not_eligible"


class CardBlocked(Conflict):
    code = "card_blocked"


@dataclass
class Decision:
    """What a command changes: the wallet (with its entries) and the command records."""

    ledger: Ledger
    new_ops: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # kind, external id, record
    updated_ops: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    occurred_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # state, points, multiplier for the answer
    # A purchase or return moves the tier's monthly totals: (purchase time, spend, points).
    activity: tuple[str, Decimal, int] | None = None


def fingerprint(customer_id: str, body: BaseModel) -> str:
    canonical = json.dumps({"customer": customer_id, **body.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def balance_view(customer_id: str, wallet: points.Wallet, now: str, policy: Policy) -> BalanceView:
    b = points.Balance.of(wallet, now, policy.zone)
    return BalanceView(
        customer_id=customer_id,
        available=b.available,
        pending=b.pending,
        held=b.held,
        debt=b.debt,
        lifetime_earned=b.lifetime_earned,
        lifetime_redeemed=b.lifetime_redeemed,
        expired_total=b.expired_total,
        expiring=b.expiring,
    )


def entry_view(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry.model_validate({k: v for k, v in item.items() if k in LedgerEntry.model_fields})


def run(
    principal: Principal,
    customer_id: str,
    command: tuple[str, str],
    digest: str,
    decide: Callable[[repo.CommandState, str], Decision],
    also_read: tuple[tuple[str, str], ...] = (),
) -> PointsResult:
    """Read, decide, write in one transaction; again on a lost race; the first answer on a retry."""
    bid = principal.business_id
    kind, external_id = command
    for _ in range(ATTEMPTS):
        state = repo.read_command(bid, customer_id, (command, *also_read))
        recorded = state.ops.get(command)
        if recorded is not None:
            return _replay(recorded, digest, customer_id, kind, external_id)
        if state.profile is None:
            raise NotFound("customer not found", {"customer_id": customer_id})
        now = now_iso()
        decision = decide(state, now)
        policy = Policy.of(state.settings)
        decision.ledger.wallet["time_zone"] = policy.time_zone
        change = decision.ledger.done()
        at = decision.occurred_at or now
        actor = principal.as_actor_record()
        tier = None
        if decision.activity is not None:
            tier = tier_moves.after_activity(
                state.tier, state.catalog, state.profile, now, *decision.activity, policy.time_zone
            )
            moved = [e for e in tier.events if e.move is not tiers.Move.RETAINED]
            if moved:
                decision.extra["tier"] = {"code": moved[-1].to_code, "move": moved[-1].move.value}
        first_seq = int(state.wallet.get("seq") or 0) + 1
        items = [
            repo.entry_item(change.wallet, first_seq + i, e, occurred_at=at, recorded_at=now, actor=actor)
            for i, e in enumerate(change.entries)
        ]
        result = PointsResult(
            customer_id=customer_id,
            external_id=external_id,
            entries=[entry_view(i) for i in items],
            balance=balance_view(customer_id, change.wallet, now, policy),
            **decision.extra,
        )
        tx = Transaction()
        repo.stage_wallet(
            tx,
            change.wallet,
            int(state.wallet.get("version") or 0),
            state.wallet_stored,
            points.next_due(change.wallet, policy),
        )
        repo.stage_entries(tx, items)
        op_indexes = [
            repo.stage_new_op(tx, bid, k, ext, {**record, "answer": result.model_dump(mode="json")})
            for k, ext, record in decision.new_ops
        ]
        for k, ext, record in decision.updated_ops:
            repo.stage_op_update(tx, bid, k, ext, record)
        staged_profile = None
        if tier is not None:
            version = int((state.tier or {}).get("version") or 0)
            _, staged_profile = tier_moves.stage_outcome(
                tx, version, tier, state.profile, state.catalog["definitions"], actor, now
            )
        if staged_profile is None:
            repo.stage_profile_check(tx, state.profile)
        try:
            repo.commit(tx, op_indexes)
        except (repo.WalletMoved, repo.OpTaken):
            continue  # read again: the next pass decides on fresh data (or replays)
        _count_points(change.entries)
        return result
    raise Conflict("the customer's points kept changing; retry", {"customer_id": customer_id})


def _count_points(entries: list[points.Entry]) -> None:
    # After the commit only: a lost race or a replay moved no points.
    def total(kind: EntryType) -> int:
        return sum(abs(e.points) for e in entries if e.type is kind)

    count(POINTS_EARNED, total(EntryType.EARN))
    count(POINTS_REDEEMED, total(EntryType.REDEEM))
    count(POINTS_REDEMPTIONS_REVERSED, total(EntryType.REDEEM_REVERSAL))


def _replay(
    recorded: dict[str, Any], digest: str, customer_id: str, kind: str, external_id: str
) -> PointsResult:
    if recorded.get("customer_id") != customer_id or recorded.get("fingerprint") != digest:
        raise Duplicate(
            f"external_id {external_id} was already used for another {kind}",
            {"field": "external_id", "external_id": external_id},
        )
    return PointsResult.model_validate({**recorded["answer"], "replayed": True})


def _status(state: repo.CommandState) -> ProgramStatus:
    assert state.profile is not None
    return ProgramStatus(state.profile["program_status"])


# --- earn ----------------------------------------------------------------------------------------


def _multiplier(state: repo.CommandState, now: str) -> tuple[Decimal, str | None]:
    """The best incentive multiplier of the customer's ranked statuses (tiers are statuses)."""
    assert state.profile is not None
    granted = entitlements(state.profile.get("statuses") or {}, state.catalog["definitions"], now)
    factor = next((g for g in granted if g.modifier == "tier_points_multiplier"), None)
    if factor is None:
        return Decimal(1), None
    return Decimal(str(factor.value)), factor.granted_by


def _check_card(principal: Principal, customer_id: str, number: str) -> None:
    card = card_repo.get_card(principal.business_id, number)
    if card is None or card.get("customer_id") != customer_id:
        raise NotFound("card not found", {"card_number": number})
    state = cards.CardState(card["state"])
    if state is cards.CardState.BLOCKED:
        raise CardBlocked("the card is blocked; it earns nothing", {"card_number": number})
    if not cards.can_earn(state):
        raise NotEligible(f"a {state.value} card earns nothing", {"card_number": number})


def earn(principal: Principal, customer_id: str, body: Purchase) -> PointsResult:
    principal.require(BACK_OFFICE)
    if body.card_number:
        _check_card(principal, customer_id, body.card_number)

    def decide(state: repo.CommandState, now: str) -> Decision:
        status = _status(state)
        if not can_earn(status):
            raise NotEligible(
                f"a {status.value} customer does not earn points", {"program_status": status.value}
            )
        policy = Policy.of(state.settings)
        factor, granted_by = _multiplier(state, now)
        earned = points.points_for(body.eligible_amount, policy, factor)
        ledger = Ledger(state.wallet, now)
        ledger.settle_time()
        lot_id = ledger.next_lot_id()
        multiplier = {"factor": str(factor), "granted_by": granted_by}
        if earned > 0:
            ledger.credit(
                EntryType.EARN,
                earned,
                lot_id,
                policy,
                external_id=body.external_id,
                details={
                    "multiplier": multiplier,
                    "eligible_amount": str(body.eligible_amount),
                    "currency": body.currency,
                },
            )
            ledger.wallet["lifetime_earned"] = int(ledger.wallet.get("lifetime_earned") or 0) + earned
        purchase = {
            "customer_id": customer_id,
            "fingerprint": fingerprint(customer_id, body),
            "points": earned,
            "lot_id": lot_id if earned > 0 else None,
            "amount": str(body.amount),
            "eligible_amount": str(body.eligible_amount),
            "currency": body.currency,
            "channel": body.channel,
            "occurred_at": iso(body.occurred_at.astimezone(UTC)),
            "returned_amount": "0",
            "points_returned": 0,
        }
        return Decision(
            ledger,
            new_ops=[("purchase", body.external_id, purchase)],
            occurred_at=str(purchase["occurred_at"]),
            extra={"points": earned, "multiplier": multiplier},
            activity=(str(purchase["occurred_at"]), body.eligible_amount, earned),
        )

    return run(principal, customer_id, ("purchase", body.external_id), fingerprint(customer_id, body), decide)


# --- return ---------------------------------------------------------------------------------------


def return_purchase(
    principal: Principal, customer_id: str, purchase_id: str, body: PurchaseReturn
) -> PointsResult:
    principal.require(BACK_OFFICE)

    def decide(state: repo.CommandState, now: str) -> Decision:
        purchase = state.ops.get(("purchase", purchase_id))
        if purchase is None or purchase.get("customer_id") != customer_id:
            raise NotFound("purchase not found", {"purchase": purchase_id})
        eligible = Decimal(purchase["eligible_amount"])
        returned = Decimal(purchase["returned_amount"]) + body.eligible_amount
        if returned > eligible:
            left = eligible - Decimal(purchase["returned_amount"])
            raise field_error(
                "eligible_amount", f"only {left} of the purchase's eligible amount is left to return"
            )
        owed = points.taken_back(int(purchase["points"]), eligible, returned) - int(
            purchase["points_returned"]
        )
        policy = Policy.of(state.settings)
        ledger = Ledger(state.wallet, now)
        ledger.settle_time()
        outcome = points.ReturnOutcome(0, 0, 0)
        if owed > 0:
            outcome = points.take_back(
                ledger,
                owed,
                purchase.get("lot_id"),
                policy,
                external_id=body.external_id,
                details={"purchase": purchase_id, "returned_amount": str(body.eligible_amount)},
            )
        updated = {
            **purchase,
            "returned_amount": str(returned),
            "points_returned": int(purchase["points_returned"]) + owed,
            "uncollected": int(purchase.get("uncollected") or 0) + outcome.uncollected,
        }
        record = {
            "customer_id": customer_id,
            "fingerprint": fingerprint(customer_id, body),
            "purchase": purchase_id,
        }
        return Decision(
            ledger,
            new_ops=[("return", body.external_id, record)],
            updated_ops=[("purchase", purchase_id, updated)],
            extra={"points": -owed, "state": "returned"},
            activity=(str(purchase["occurred_at"]), -body.eligible_amount, -owed),
        )

    digest = fingerprint(customer_id, body) + purchase_id
    return run(
        principal,
        customer_id,
        ("return", body.external_id),
        digest,
        _with_digest(decide, digest),
        also_read=(("purchase", purchase_id),),
    )


def _with_digest(
    decide: Callable[[repo.CommandState, str], Decision], digest: str
) -> Callable[..., Decision]:
    """The command's record fingerprints the whole request (body and path)."""

    def decided(state: repo.CommandState, now: str) -> Decision:
        decision = decide(state, now)
        decision.new_ops = [
            (k, ext, {**record, "fingerprint": digest}) for k, ext, record in decision.new_ops
        ]
        return decision

    return decided


# --- redeem, capture, void, reverse -------------------------------------------------------------------


def redeem(principal: Principal, customer_id: str, body: Redemption) -> PointsResult:
    # Customers redeem their own points in the app; staff and the business's systems too.
    principal.require_self_or(customer_id, BACK_OFFICE)

    def decide(state: repo.CommandState, now: str) -> Decision:
        status = _status(state)
        policy = Policy.of(state.settings)
        flags = {
            "anonymous_can_redeem": policy.anonymous_can_redeem,
            "new_card_can_redeem": policy.new_card_can_redeem,
        }
        if not can_redeem(status, flags):
            raise NotEligible(
                f"a {status.value} customer cannot redeem points", {"program_status": status.value}
            )
        ledger = Ledger(state.wallet, now)
        ledger.settle_time()
        taken = ledger.debit(
            EntryType.REDEEM, body.points, external_id=body.external_id, details={"held": body.hold}
        )
        if body.hold:
            ledger.wallet["holds"][body.external_id] = taken
        else:
            ledger.wallet["lifetime_redeemed"] = (
                int(ledger.wallet.get("lifetime_redeemed") or 0) + body.points
            )
        state_name = "held" if body.hold else "captured"
        record = {
            "customer_id": customer_id,
            "fingerprint": fingerprint(customer_id, body),
            "points": body.points,
            "reward": body.reward,
            "state": state_name,
            "allocations": taken,
        }
        return Decision(
            ledger,
            new_ops=[("redemption", body.external_id, record)],
            extra={"state": state_name, "points": -body.points},
        )

    return run(
        principal, customer_id, ("redemption", body.external_id), fingerprint(customer_id, body), decide
    )


_SETTLE_TARGET = {"capture": "captured", "void": "voided", "reversal": "reversed"}


def settle_redemption(
    principal: Principal, customer_id: str, redemption_id: str, action: str
) -> PointsResult:
    """Capture or void a hold, or reverse a captured redemption (points back into their lots)."""
    principal.require(BACK_OFFICE)
    target = _SETTLE_TARGET[action]
    command = (f"redemption.{action}", redemption_id)
    digest = hashlib.sha256(f"{customer_id}\x1f{redemption_id}\x1f{action}".encode()).hexdigest()

    def decide(state: repo.CommandState, now: str) -> Decision:
        found = state.ops.get(("redemption", redemption_id))
        if found is None or found.get("customer_id") != customer_id:
            raise NotFound("redemption not found", {"redemption": redemption_id})
        current = str(found["state"])
        allowed = {"capture": ("held",), "void": ("held",), "reversal": ("captured",)}[action]
        if current not in allowed:
            raise Conflict(
                f"a {current} redemption cannot be {target}",
                {"state": current, "allowed_from": list(allowed)},
            )
        ledger = Ledger(state.wallet, now)
        ledger.settle_time()
        amount = int(found["points"])
        if action == "capture":
            ledger.wallet["holds"].pop(redemption_id, None)
            ledger.wallet["lifetime_redeemed"] = int(ledger.wallet.get("lifetime_redeemed") or 0) + amount
        else:
            if action == "void":
                ledger.wallet["holds"].pop(redemption_id, None)
            else:
                ledger.wallet["lifetime_redeemed"] = int(ledger.wallet.get("lifetime_redeemed") or 0) - amount
            restored = ledger.restore(found.get("allocations") or [])
            ledger.add(
                points.Entry(EntryType.REDEEM_REVERSAL, amount, restored, redemption_id, {"action": action})
            )
        record = {"customer_id": customer_id, "fingerprint": digest}
        return Decision(
            ledger,
            new_ops=[(command[0], redemption_id, record)],
            updated_ops=[("redemption", redemption_id, {**found, "state": target})],
            extra={"state": target, "points": 0 if action == "capture" else amount},
        )

    return run(principal, customer_id, command, digest, decide, also_read=(("redemption", redemption_id),))


# --- adjust -------------------------------------------------------------------------------------------


def adjust(principal: Principal, customer_id: str, body: Adjustment) -> PointsResult:
    principal.require(ADMINS)

    def decide(state: repo.CommandState, now: str) -> Decision:
        policy = Policy.of(state.settings)
        ledger = Ledger(state.wallet, now)
        ledger.settle_time()
        details = {"reason": body.reason}
        if body.points > 0:
            expires = None
            if body.expires_at is not None:
                if body.expires_at.tzinfo is None:
                    raise field_error("expires_at", "give a time zone (for example 2027-01-31T00:00:00Z)")
                day = body.expires_at.astimezone(policy.zone).date()
                expires = points.end_of_local_day(day, policy.zone)
                if expires <= now:
                    raise field_error("expires_at", "must be in the future")
            ledger.credit(
                EntryType.ADJUST,
                body.points,
                ledger.next_lot_id(),
                policy,
                external_id=body.external_id,
                details=details,
                expires_at=expires,
                pending=False,
            )
        else:
            ledger.debit(EntryType.ADJUST, -body.points, external_id=body.external_id, details=details)
        record = {
            "customer_id": customer_id,
            "fingerprint": fingerprint(customer_id, body),
            "reason": body.reason,
        }
        return Decision(
            ledger, new_ops=[("adjustment", body.external_id, record)], extra={"points": body.points}
        )

    return run(
        principal, customer_id, ("adjustment", body.external_id), fingerprint(customer_id, body), decide
    )


def earn_by_card(principal: Principal, number: str, body: Purchase) -> PointsResult:
    """A purchase at a till that knows only the card: it earns for the card's holder (a packed
    card's `new` virtual owner until someone registers it)."""
    principal.require(BACK_OFFICE)
    card = card_repo.get_card(principal.business_id, number)
    if card is None:
        raise NotFound("card not found", {"card_number": number})
    return earn(principal, card["customer_id"], body.model_copy(update={"card_number": number}))
