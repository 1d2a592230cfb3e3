"""The points ledger (docs/design.md#points-ledger): lots, debits that name the lots they
consume, expiry in the business's time zone, returns, holds, debt. Pure: no I/O.

A customer's open lots live in one wallet item with the ledger's sequence number, debt,
holds and lifetime figures, so every command reads one item and writes it back under its
sequence (plus the immutable ledger entries it adds). The balance is never a counter: it is
computed from the lots each time (`Balance.of`). A lot leaves the wallet when nothing is
left of it or it expires; what a reversal needs to restore it travels with the redemption.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, TypedDict, cast
from zoneinfo import ZoneInfo

from loyalty.domain.clock import iso
from loyalty.domain.errors import Conflict, field_error

# After a reversal restores points to a lot that has expired meanwhile, they stay usable this long.
REVERSAL_GRACE_DAYS = 14
# Above this many open lots a wallet folds together lots nothing tells apart (same expiry, both
# available, same reminders sent), so the one wallet item stays far below DynamoDB's 400 KB.
COALESCE_ABOVE = 400


class EntryType(StrEnum):
    EARN = "earn"
    ACTIVATE = "activate"
    REDEEM = "redeem"
    REDEEM_REVERSAL = "redeem_reversal"
    EARN_REVERSAL = "earn_reversal"
    ADJUST = "adjust"
    EXPIRE = "expire"
    DEBT = "debt"
    DEBT_SETTLE = "debt_settle"
    MERGE_IN = "merge_in"
    MERGE_OUT = "merge_out"
    FORFEIT = "forfeit"


class ExpiryPolicy(StrEnum):
    NEVER = "never"
    DAYS = "days"
    MONTHS = "months"
    PERIOD_END = "period_end"
    INACTIVITY = "inactivity"


class ReturnPolicy(StrEnum):
    ONLY_PENDING = "only_pending"  # take back only points still pending (in the return window)
    WITHIN_BALANCE = "within_balance"  # take back what the balance holds; the rest is uncollected
    ALLOW_DEBT = "allow_debt"  # the rest becomes debt that later credits pay off first


class InsufficientPoints(Conflict):
    code = "insufficient_points"


# --- stored shapes --------------------------------------------------------------------------


class Lot(TypedDict, total=False):
    lot_id: str
    points: int  # credited
    remaining: int
    earned_at: str
    available_at: str  # pending until then
    expires_at: str | None  # end of a local day; None: never (or the wallet's inactivity deadline)
    source: str  # earn, adjust, redeem_reversal, merge_in
    ref: str  # the purchase's or adjustment's external id
    activated: bool  # a pending lot whose `activate` entry is written
    reminded: list[int]  # reminder thresholds (days) already sent (or passed) for this lot
    folded: list[str]  # ids of lots folded into this one (see `coalesce`)
    moved_from: str  # its id in the temporary owner's wallet it was merged from


class Allocation(TypedDict, total=False):
    """Points a debit took from one lot, with what restoring them needs."""

    lot_id: str
    points: int
    earned_at: str
    available_at: str
    expires_at: str | None
    source: str
    ref: str


class Wallet(TypedDict, total=False):
    business_id: str
    customer_id: str
    seq: int  # ledger entries written so far
    version: int  # every write bumps it (a capture changes holds without an entry)
    lots: list[Lot]  # open lots
    debt: int
    holds: dict[str, list[Allocation]]  # redemption id -> what its hold took
    lifetime_earned: int
    lifetime_redeemed: int
    expired_total: int
    inactivity_deadline: str | None
    time_zone: str  # the business's, copied at each change: a balance read needs nothing else
    qualifying: dict[str, Any]  # tier basis per month (docs/design.md#tiers)


def empty_wallet(business_id: str, customer_id: str) -> Wallet:
    return {
        "business_id": business_id,
        "customer_id": customer_id,
        "seq": 0,
        "version": 0,
        "lots": [],
        "debt": 0,
        "holds": {},
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "expired_total": 0,
        "inactivity_deadline": None,
    }


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A business's points settings, as the rules read them (schemas.points validates them)."""

    points_per_unit: Decimal = Decimal(1)
    rounding: str = "down"  # or "nearest"
    pending_days: int = 0
    expiry: ExpiryPolicy = ExpiryPolicy.NEVER
    expiry_value: int = 0
    expiry_period: str = "year"  # month, quarter, year (period_end)
    return_policy: ReturnPolicy = ReturnPolicy.ALLOW_DEBT
    reminder_days: tuple[int, ...] = (30, 7)
    time_zone: str = "UTC"
    anonymous_can_redeem: bool = False
    new_card_can_redeem: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> Policy:
        if not stored:
            return cls()
        expiry = stored.get("expiry") or {}
        return cls(
            points_per_unit=Decimal(str(stored.get("points_per_unit", 1))),
            rounding=str(stored.get("rounding", "down")),
            pending_days=int(stored.get("pending_days", 0)),
            expiry=ExpiryPolicy(expiry.get("policy", "never")),
            expiry_value=int(expiry.get("value") or 0),
            expiry_period=str(expiry.get("period") or "year"),
            return_policy=ReturnPolicy(stored.get("return_policy", "allow_debt")),
            reminder_days=tuple(int(d) for d in stored.get("reminder_days", (30, 7))),
            time_zone=str(stored.get("time_zone", "UTC")),
            anonymous_can_redeem=bool(stored.get("anonymous_can_redeem", False)),
            new_card_can_redeem=bool(stored.get("new_card_can_redeem", False)),
        )


# --- time ---------------------------------------------------------------------------------------


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def end_of_local_day(day: date, zone: ZoneInfo) -> str:
    """The last microsecond of `day` in `zone`, as a UTC stamp (a lot is usable all that day)."""
    local = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=zone)
    return iso(local.astimezone(UTC))


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(day: date, period: str, after: int = 0) -> date:
    """The last day of the month, quarter or year holding `day` (`after` periods later)."""
    if period == "month":
        start = date(day.year, day.month, 1)
        last = add_months(start, after + 1) - timedelta(days=1)
    elif period == "quarter":
        start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        last = add_months(start, 3 * (after + 1)) - timedelta(days=1)
    else:
        last = date(day.year + after, 12, 31)
    return last


def expiry_of(earned_at: str, policy: Policy) -> str | None:
    """When a lot earned at `earned_at` expires; fixed when the lot is made."""
    local = parse(earned_at).astimezone(policy.zone).date()
    if policy.expiry is ExpiryPolicy.DAYS:
        return end_of_local_day(local + timedelta(days=policy.expiry_value), policy.zone)
    if policy.expiry is ExpiryPolicy.MONTHS:
        return end_of_local_day(add_months(local, policy.expiry_value), policy.zone)
    if policy.expiry is ExpiryPolicy.PERIOD_END:
        return end_of_local_day(period_end(local, policy.expiry_period, policy.expiry_value), policy.zone)
    return None  # never, or the wallet's inactivity deadline


def inactivity_deadline(active_at: str, policy: Policy) -> str | None:
    if policy.expiry is not ExpiryPolicy.INACTIVITY:
        return None
    local = parse(active_at).astimezone(policy.zone).date()
    return end_of_local_day(add_months(local, policy.expiry_value), policy.zone)


def available_at(earned_at: str, policy: Policy) -> str:
    return iso(parse(earned_at) + timedelta(days=policy.pending_days))


# --- reading a wallet ---------------------------------------------------------------------------------


def lot_expiry(lot: Lot, wallet: Wallet) -> str | None:
    return lot.get("expires_at") or wallet.get("inactivity_deadline")


def is_expired(lot: Lot, wallet: Wallet, now: str) -> bool:
    expires = lot_expiry(lot, wallet)
    return expires is not None and expires < now


def is_pending(lot: Lot, now: str) -> bool:
    return str(lot.get("available_at") or "") > now


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int
    held: int
    debt: int
    lifetime_earned: int
    lifetime_redeemed: int
    expired_total: int
    expiring: list[dict[str, Any]]

    @property
    def total(self) -> int:
        """What the ledger's `balance_after` shows: lot remainders minus debt."""
        return self.available + self.pending - self.debt

    @classmethod
    def of(cls, wallet: Wallet, now: str, zone: ZoneInfo | None = None) -> Balance:
        available = pending = 0
        by_day: dict[str, int] = {}
        for lot in wallet.get("lots") or []:
            if is_expired(lot, wallet, now):
                continue  # past its day: not spendable, even before the expiry run records it
            if is_pending(lot, now):
                pending += lot["remaining"]
            else:
                available += lot["remaining"]
            expires = lot_expiry(lot, wallet)
            if expires:
                day = parse(expires).astimezone(zone or UTC).date().isoformat()
                by_day[day] = by_day.get(day, 0) + lot["remaining"]
        held = sum(a["points"] for allocs in (wallet.get("holds") or {}).values() for a in allocs)
        return cls(
            available=available,
            pending=pending,
            held=held,
            debt=int(wallet.get("debt") or 0),
            lifetime_earned=int(wallet.get("lifetime_earned") or 0),
            lifetime_redeemed=int(wallet.get("lifetime_redeemed") or 0),
            expired_total=int(wallet.get("expired_total") or 0),
            expiring=[{"date": d, "points": p} for d, p in sorted(by_day.items()) if p],
        )


def spend_order(lot: Lot, wallet: Wallet) -> tuple[int, str, str]:
    """Soonest expiry first, then oldest; lots that never expire last."""
    expires = lot_expiry(lot, wallet)
    return (1 if expires is None else 0, expires or "", lot.get("earned_at") or "")


# --- changing a wallet: every change returns the new wallet and its ledger entries -----------


@dataclass
class Entry:
    """One immutable ledger entry; `balance_after` is filled when the change is applied."""

    type: EntryType
    points: int  # signed: credits positive, debits negative
    lots: list[dict[str, Any]] = field(default_factory=list)  # [{lot_id, points}]
    external_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    balance_after: int = 0


@dataclass
class Change:
    wallet: Wallet
    entries: list[Entry]


class Ledger:
    """A wallet being changed by one command at `now`; collects the entries it makes. Each
    entry is added after its change is applied, so its `balance_after` is the real balance."""

    def __init__(self, wallet: Wallet, now: str) -> None:
        self.wallet = cast(Wallet, {**wallet, "lots": [dict(lot) for lot in wallet.get("lots") or []]})
        self.wallet["holds"] = {k: list(v) for k, v in (wallet.get("holds") or {}).items()}
        self.now = now
        self.entries: list[Entry] = []

    @property
    def lots(self) -> list[Lot]:
        return self.wallet["lots"]

    def next_lot_id(self) -> str:
        """Lot ids follow the ledger's sequence: unique in the wallet, in the order made."""
        return f"L{int(self.wallet.get('seq') or 0) + len(self.entries) + 1:09d}"

    def fresh_lot_id(self, index: int) -> str:
        """The `index`-th lot id of the entry about to be added: unique in the wallet forever."""
        return f"{self.next_lot_id()}.{index + 1}"

    def balance(self) -> int:
        return Balance.of(self.wallet, self.now).total

    def add(self, entry: Entry) -> Entry:
        entry.balance_after = self.balance()
        self.entries.append(entry)
        return entry

    def done(self) -> Change:
        """The wallet after the change (spent lots gone, sequence advanced) and its entries."""
        self.wallet["seq"] = int(self.wallet.get("seq") or 0) + len(self.entries)
        self.wallet["version"] = int(self.wallet.get("version") or 0) + 1
        self.wallet["lots"] = [lot for lot in self.lots if lot["remaining"] > 0]
        if len(self.wallet["lots"]) > COALESCE_ABOVE:
            self.wallet["lots"] = coalesce(self.wallet["lots"], self.now)
        return Change(self.wallet, self.entries)

    # --- maintenance that every command does first ---------------------------------------

    def settle_time(self) -> None:
        """Expire what has passed its day and record what matured, before anything else."""
        expired = [
            lot for lot in self.lots if lot["remaining"] > 0 and is_expired(lot, self.wallet, self.now)
        ]
        if expired:
            points = sum(lot["remaining"] for lot in expired)
            view = _lot_view(expired)
            for lot in expired:
                lot["remaining"] = 0
            self.wallet["expired_total"] = int(self.wallet.get("expired_total") or 0) + points
            self.add(Entry(EntryType.EXPIRE, -points, view))
        deadline = self.wallet.get("inactivity_deadline")
        if deadline and deadline < self.now:
            self.wallet["inactivity_deadline"] = None  # passed: the next credit starts a new one
        matured = [
            lot
            for lot in self.lots
            if lot["remaining"] > 0
            and not lot.get("activated")
            and was_pending(lot)
            and not is_pending(lot, self.now)
        ]
        for lot in matured:
            lot["activated"] = True
        if matured:
            points = sum(lot["remaining"] for lot in matured)
            self.add(Entry(EntryType.ACTIVATE, 0, _lot_view(matured), details={"points": points}))

    # --- credits ------------------------------------------------------------------------------

    def credit(
        self,
        kind: EntryType,
        points: int,
        lot_id: str,
        policy: Policy,
        *,
        external_id: str | None,
        details: dict[str, Any] | None = None,
        expires_at: str | None = None,
        pending: bool = True,
    ) -> Lot | None:
        """A credit: it pays off debt first (then a `debt_settle` entry), the rest becomes a lot."""
        if points <= 0:
            raise field_error("points", "must be a positive whole number")
        settle = min(points, int(self.wallet.get("debt") or 0))
        self.wallet["debt"] = int(self.wallet.get("debt") or 0) - settle
        rest = points - settle
        lot: Lot | None = None
        if rest:
            lot = {
                "lot_id": lot_id,
                "points": rest,
                "remaining": rest,
                "earned_at": self.now,
                "available_at": available_at(self.now, policy) if pending else self.now,
                "expires_at": expires_at if expires_at is not None else expiry_of(self.now, policy),
                "source": kind.value,
                "ref": external_id or "",
            }
            self.lots.append(lot)
        if policy.expiry is ExpiryPolicy.INACTIVITY and (
            kind is EntryType.EARN or not self.wallet.get("inactivity_deadline")
        ):
            # a purchase pushes the deadline back; any credit into a wallet without one starts it
            self.wallet["inactivity_deadline"] = inactivity_deadline(self.now, policy)
        lots = [{"lot_id": lot_id, "points": rest}] if rest else []
        self.add(Entry(kind, points, lots, external_id, details or {}))
        if settle:
            self.add(Entry(EntryType.DEBT_SETTLE, 0, [], external_id, {"settled": settle}))
        return lot

    # --- debits -----------------------------------------------------------------------------------

    def spendable(self, *, include_pending: bool = False, first: str | None = None) -> list[Lot]:
        lots = [
            lot
            for lot in self.lots
            if lot["remaining"] > 0
            and not is_expired(lot, self.wallet, self.now)
            and (include_pending or not is_pending(lot, self.now))
        ]
        lots.sort(key=lambda lot: spend_order(lot, self.wallet))
        if first is not None:
            # stable: the named lot (or the lot it was folded into), then the order
            lots.sort(key=lambda lot: not holds_lot(lot, first))
        return lots

    def take(self, points: int, lots: Iterable[Lot]) -> list[Allocation]:
        """Take up to `points` from `lots` in order; the allocations say from which."""
        taken: list[Allocation] = []
        left = points
        for lot in lots:
            if left <= 0:
                break
            part = min(left, lot["remaining"])
            if part <= 0:
                continue
            lot["remaining"] -= part
            left -= part
            taken.append(
                {
                    "lot_id": lot["lot_id"],
                    "points": part,
                    "earned_at": lot.get("earned_at", ""),
                    "available_at": lot.get("available_at", ""),
                    "expires_at": lot.get("expires_at"),
                    "source": lot.get("source", ""),
                    "ref": lot.get("ref", ""),
                }
            )
        return taken

    def restore(self, allocations: Sequence[Allocation]) -> list[dict[str, Any]]:
        """Put points back into the lots they came from, with their own expiry and dates; a lot
        that expired meanwhile gets a short grace instead of coming back dead."""
        grace = iso(parse(self.now) + timedelta(days=REVERSAL_GRACE_DAYS))
        for index, allocation in enumerate(allocations):
            expires = allocation.get("expires_at")
            if expires is not None and expires < self.now:
                expires = grace
            open_lot = next((lot for lot in self.lots if lot["lot_id"] == allocation["lot_id"]), None)
            if open_lot is not None and open_lot.get("expires_at") == expires:
                open_lot["remaining"] += allocation["points"]
                continue
            self.lots.append(
                {
                    "lot_id": allocation["lot_id"] if open_lot is None else self.fresh_lot_id(index),
                    "points": allocation["points"],
                    "remaining": allocation["points"],
                    "earned_at": allocation.get("earned_at") or self.now,
                    "available_at": allocation.get("available_at") or self.now,
                    "expires_at": expires,
                    "source": allocation.get("source") or "restored",
                    "ref": allocation.get("ref") or "",
                    "activated": True,
                }
            )
        return _alloc_view(allocations)

    def debit(
        self, kind: EntryType, points: int, *, external_id: str | None, details: dict[str, Any] | None = None
    ) -> list[Allocation]:
        """Take `points` of available points (soonest expiry first), or refuse taking nothing."""
        if points <= 0:
            raise field_error("points", "must be a positive whole number")
        available = sum(lot["remaining"] for lot in self.spendable())
        if available < points:
            raise InsufficientPoints(
                f"{points} points asked, {available} available",
                {"field": "points", "available": available, "asked": points},
            )
        taken = self.take(points, self.spendable())
        self.add(Entry(kind, -points, _alloc_view(taken), external_id, details or {}))
        return taken


def holds_lot(lot: Lot, lot_id: str) -> bool:
    return lot["lot_id"] == lot_id or lot_id in (lot.get("folded") or ())


def coalesce(lots: list[Lot], now: str) -> list[Lot]:
    """Fold available lots that share their expiry and reminders into the oldest of them.

    Spending order, expiry and reminders are the same before and after; a purchase's own lot
    is still found for its returns through `folded`. Pending lots are kept apart (each
    matures on its own day)."""
    kept: list[Lot] = []
    into: dict[tuple[str | None, tuple[int, ...]], Lot] = {}
    for lot in sorted(lots, key=lambda lot: lot["lot_id"]):
        if is_pending(lot, now) or (was_pending(lot) and not lot.get("activated")):
            kept.append(lot)  # its own maturing day, or its `activate` entry still to write
            continue
        key = (lot.get("expires_at"), tuple(lot.get("reminded") or ()))
        oldest = into.get(key)
        if oldest is None:
            into[key] = lot
            kept.append(lot)
            continue
        oldest["points"] += lot["points"]
        oldest["remaining"] += lot["remaining"]
        oldest["folded"] = [*(oldest.get("folded") or ()), lot["lot_id"], *(lot.get("folded") or ())]
        oldest["activated"] = True
    return kept


def was_pending(lot: Lot) -> bool:
    return str(lot.get("available_at") or "") > str(lot.get("earned_at") or "")


def _alloc_view(allocations: Iterable[Allocation]) -> list[dict[str, Any]]:
    return [{"lot_id": a["lot_id"], "points": a["points"]} for a in allocations]


# --- earning ------------------------------------------------------------------------------------------


def points_for(eligible_amount: Decimal, policy: Policy, multiplier: Decimal = Decimal(1)) -> int:
    """Points a purchase earns: rate x eligible amount x the best multiplier, rounded as set."""
    raw = eligible_amount * policy.points_per_unit * multiplier
    rounding = ROUND_HALF_UP if policy.rounding == "nearest" else ROUND_DOWN
    return int(raw.quantize(Decimal(1), rounding=rounding))


def taken_back(points: int, eligible_amount: Decimal, returned_total: Decimal) -> int:
    """Points to have taken back once `returned_total` of the purchase is returned.

    Cumulative, so partial returns add up exactly to the points earned: the last return of
    the whole amount takes exactly what is left, however the earlier ones rounded.
    """
    if returned_total >= eligible_amount:
        return points
    return math.floor(Decimal(points) * returned_total / eligible_amount)


@dataclass
class ReturnOutcome:
    taken: int  # taken back from lots
    debt: int  # became debt
    uncollected: int  # the business's policy let it go (recorded, never silent)


def take_back(
    ledger: Ledger,
    points: int,
    purchase_lot: str | None,
    policy: Policy,
    *,
    external_id: str,
    details: dict[str, Any],
) -> ReturnOutcome:
    """A return's points: from the purchase's own lot, then other lots, then per policy."""
    if policy.return_policy is ReturnPolicy.ONLY_PENDING:
        own = [
            lot
            for lot in ledger.lots
            if lot["lot_id"] == purchase_lot and lot["remaining"] > 0 and is_pending(lot, ledger.now)
        ]
        lots = own
    else:
        lots = ledger.spendable(include_pending=True, first=purchase_lot)
    taken = ledger.take(points, lots)
    got = sum(a["points"] for a in taken)
    short = points - got
    debt = short if policy.return_policy is ReturnPolicy.ALLOW_DEBT else 0
    uncollected = short - debt
    noted = {**details, **({"uncollected": uncollected} if uncollected else {})}
    ledger.add(Entry(EntryType.EARN_REVERSAL, -got, _alloc_view(taken), external_id, noted))
    if debt:
        ledger.wallet["debt"] = int(ledger.wallet.get("debt") or 0) + debt
        reason = {"reason": "return after the points were spent"}
        ledger.add(Entry(EntryType.DEBT, -debt, [], external_id, reason))
    return ReturnOutcome(got, debt, uncollected)


# --- merging and forfeiting -----------------------------------------------------------------------------


def merge(into: Wallet, source: Wallet, now: str) -> tuple[Change, Change]:
    """Move a temporary owner's lots (with their expiry and pending dates) and debt into the
    real customer's wallet; both ledgers record it, naming each other."""
    out = Ledger(source, now)
    moved: list[Lot] = [lot.copy() for lot in out.lots if lot["remaining"] > 0]
    debt = int(source.get("debt") or 0)
    points = sum(lot["remaining"] for lot in moved)
    for lot in out.lots:
        lot["remaining"] = 0
    out.wallet["debt"] = 0
    out.add(
        Entry(
            EntryType.MERGE_OUT, -points, _lot_view(moved), None, {"debt": debt, "into": into["customer_id"]}
        )
    )
    inn = Ledger(into, now)
    for i, lot in enumerate(moved):
        # a fresh id: the source's ids may be ones this wallet spent, held or folded before
        inn.lots.append({**lot, "lot_id": inn.fresh_lot_id(i), "moved_from": lot["lot_id"]})
    moved = inn.lots[len(inn.lots) - len(moved) :]
    earned = int(source.get("lifetime_earned") or 0)
    inn.wallet["lifetime_earned"] = int(inn.wallet.get("lifetime_earned") or 0) + earned
    inn.add(Entry(EntryType.MERGE_IN, points, _lot_view(moved), None, {"from": source["customer_id"]}))
    if debt:
        inn.wallet["debt"] = int(inn.wallet.get("debt") or 0) + debt
        inn.add(Entry(EntryType.DEBT, -debt, [], None, {"reason": "moved from a card's temporary owner"}))
    return inn.done(), out.done()


def _lot_view(lots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"lot_id": lot["lot_id"], "points": lot["remaining"]} for lot in lots]


def forfeit(wallet: Wallet, now: str) -> Change:
    """Exclusion: the balance is forfeited, with an entry (amounts are not personal data)."""
    ledger = Ledger(wallet, now)
    left: list[Lot] = [lot.copy() for lot in ledger.lots if lot["remaining"] > 0]
    points = sum(lot["remaining"] for lot in left)
    held = sum(a["points"] for allocs in ledger.wallet["holds"].values() for a in allocs)
    for lot in ledger.lots:
        lot["remaining"] = 0
    ledger.wallet["holds"] = {}
    ledger.wallet["debt"] = 0  # nothing is owed by a person who left; recorded, not hidden
    details = {"held": held, "debt": int(wallet.get("debt") or 0)}
    ledger.add(Entry(EntryType.FORFEIT, -points, _lot_view(left), None, details))
    return ledger.done()


# --- the scheduled run: what is due, when --------------------------------------------------------------


def reminder_at(expires_at: str, days: int, zone: ZoneInfo) -> str:
    """The start of the local day `days` before a lot's last day."""
    last_day = parse(expires_at).astimezone(zone).date()
    start = datetime.combine(last_day - timedelta(days=days), time(0), tzinfo=zone)
    return iso(start.astimezone(UTC))


def due_reminders(wallet: Wallet, policy: Policy, now: str) -> list[tuple[Lot, int]]:
    """(lot, threshold) pairs whose reminder is due and not yet sent, the largest threshold
    first per lot (a lot reminded at 7 days no longer needs its 30-day one)."""
    due: list[tuple[Lot, int]] = []
    for lot in wallet.get("lots") or []:
        expires = lot_expiry(lot, wallet)
        if not expires or lot["remaining"] <= 0 or expires < now:
            continue
        sent = set(lot.get("reminded") or [])
        passed = [d for d in policy.reminder_days if reminder_at(expires, d, policy.zone) <= now]
        if passed and min(passed) not in sent:
            due.append((lot, min(passed)))
    return due


def mark_reminded(lot: Lot, threshold: int, policy: Policy) -> None:
    """A reminder at `threshold` days also settles every earlier (larger) threshold."""
    lot["reminded"] = sorted(
        {*(lot.get("reminded") or []), *(d for d in policy.reminder_days if d >= threshold)}
    )


def next_due(wallet: Wallet, policy: Policy) -> str | None:
    """The earliest moment the scheduled run has something to do for this wallet: a lot to
    activate or expire, or a reminder to send. The wallet's place in the due index."""
    moments: list[str] = []
    for lot in wallet.get("lots") or []:
        if lot["remaining"] <= 0:
            continue
        if was_pending(lot) and not lot.get("activated"):
            moments.append(lot["available_at"])
        expires = lot_expiry(lot, wallet)
        if expires:
            moments.append(iso(parse(expires) + timedelta(microseconds=1)))
            sent = set(lot.get("reminded") or [])
            moments.extend(
                reminder_at(expires, d, policy.zone) for d in policy.reminder_days if d not in sent
            )
    return min(moments) if moments else None
