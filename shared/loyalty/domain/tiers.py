"""Tiers (docs/design.md#tiers): a ladder of ranked statuses reached by a qualifying value over
a window of months, kept by a retention check. Pure: no I/O.

A customer's tier state is one record (stored as the customer's `TIER` item): per-month
totals of eligible spend and points earned (so neither a purchase nor a check reads the
ledger), the computed tier with when it was reached and until when it is retained, an
optional manual tier, and `effective`, the tier code the profile holds as a ranked status
(`source: "tier"`), which is what entitlements, the best status and webhooks see.

Tiers compare by their ranked-status rank (1 is best); a valid ladder's thresholds rise as
the rank improves, so "higher" means the same by threshold and by rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any, TypedDict, cast
from zoneinfo import ZoneInfo

from loyalty.domain.points import add_months, end_of_local_day, parse

MAX_WINDOW_MONTHS = 36  # months kept in the record: the longest window a ladder may use


class Basis(StrEnum):
    ELIGIBLE_SPEND = "eligible_spend"
    POINTS_EARNED = "points_earned"


class Retention(StrEnum):
    ANNIVERSARY = "anniversary"
    FIXED_DATES = "fixed_dates"


class Downgrade(StrEnum):
    ONE_DOWN = "one_down"
    RECOMPUTE = "recompute"


class Move(StrEnum):
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"
    RETAINED = "retained"


class ComputedTier(TypedDict):
    code: str
    reached_at: str
    retained_until: str


class ManualTier(TypedDict, total=False):
    code: str
    until: str
    floor: bool
    set_by: str
    set_at: str
    reason: str | None


class TierRecord(TypedDict, total=False):
    business_id: str
    customer_id: str
    months: dict[str, dict[str, Any]]  # "YYYY-MM" -> {"spend": "12.50", "points": 12}
    tier: ComputedTier | None
    manual: ManualTier | None
    effective: str | None  # the tier code the profile holds
    # The profile as last written or read with this record (its version and status order):
    # the retention check changes the profile without reading it while these still hold.
    profile_version: int
    status_order: list[str]
    holds: bool  # whether that profile's program status holds ranked statuses
    program_status: str
    seq: int  # tier events written so far
    version: int


@dataclass(frozen=True)
class Step:
    code: str
    attain: Decimal
    maintain: Decimal


@dataclass(frozen=True)
class Ladder:
    basis: Basis
    window_months: int
    retention: Retention
    retention_months: int
    fixed_dates: tuple[str, ...]  # "MM-DD", for Retention.FIXED_DATES
    downgrade: Downgrade
    steps: tuple[Step, ...]  # lowest tier first
    time_zone: str = "UTC"
    version: int = 0

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None, time_zone: str = "UTC") -> Ladder | None:
        if not stored or not stored.get("tiers"):
            return None
        steps = tuple(
            Step(str(t["code"]), Decimal(str(t["attain"])), Decimal(str(t["maintain"])))
            for t in stored["tiers"]
        )
        return cls(
            basis=Basis(stored["basis"]),
            window_months=int(stored["window_months"]),
            retention=Retention(stored["retention"]),
            retention_months=int(stored.get("retention_months") or 12),
            fixed_dates=tuple(stored.get("fixed_dates") or ()),
            downgrade=Downgrade(stored["downgrade"]),
            steps=tuple(sorted(steps, key=lambda s: s.attain)),
            time_zone=time_zone,
            version=int(stored.get("version") or 0),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def codes(self) -> list[str]:
        return [s.code for s in self.steps]

    def step(self, code: str | None) -> Step | None:
        return next((s for s in self.steps if s.code == code), None)

    def position(self, code: str | None) -> int:
        """Index in the ladder, lowest 0; -1 for no tier (or a code no longer in it)."""
        return next((i for i, s in enumerate(self.steps) if s.code == code), -1)

    def attained(self, value: Decimal) -> Step | None:
        """The highest tier whose attain threshold `value` reaches."""
        return next((s for s in reversed(self.steps) if value >= s.attain), None)

    def maintained(self, value: Decimal) -> Step | None:
        """The highest tier whose maintain threshold `value` reaches."""
        return next((s for s in reversed(self.steps) if value >= s.maintain), None)

    def retention_end(self, reached_at: str) -> str:
        """When a tier reached (or last retained) at `reached_at` is checked again."""
        day = parse(reached_at).astimezone(self.zone).date()
        if self.retention is Retention.ANNIVERSARY:
            return end_of_local_day(add_months(day, self.retention_months), self.zone)
        return end_of_local_day(next_fixed_date(day, self.fixed_dates), self.zone)


def next_fixed_date(after: date, dates: Sequence[str]) -> date:
    """The first of the "MM-DD" dates strictly after `after` (Feb 29 falls on Feb 28)."""
    candidates: list[date] = []
    for year in (after.year, after.year + 1):
        for text in dates:
            month, day = (int(p) for p in text.split("-"))
            try:
                candidates.append(date(year, month, day))
            except ValueError:
                candidates.append(date(year, month, day - 1))
    return min(d for d in candidates if d > after)


def empty_record(business_id: str, customer_id: str) -> TierRecord:
    return {
        "business_id": business_id,
        "customer_id": customer_id,
        "months": {},
        "tier": None,
        "manual": None,
        "effective": None,
        "seq": 0,
        "version": 0,
    }


# --- the qualifying value ---------------------------------------------------------------


def month_of(at: str, zone: ZoneInfo) -> str:
    return parse(at).astimezone(zone).strftime("%Y-%m")


def add_activity(
    record: TierRecord, at: str, zone: ZoneInfo, spend: Decimal = Decimal(0), points: int = 0
) -> None:
    """Add a purchase's eligible spend and points (negative for a return) to its month.

    A return counts against the month of its purchase, so the window it falls out of is the
    purchase's; months older than any window are dropped, which keeps the record small.
    """
    months = record.setdefault("months", {})
    key = month_of(at, zone)
    totals = months.setdefault(key, {"spend": "0", "points": 0})
    totals["spend"] = str(max(Decimal(0), Decimal(str(totals["spend"])) + spend))
    totals["points"] = max(0, int(totals["points"]) + points)
    _prune(record, at, zone)


def _prune(record: TierRecord, now: str, zone: ZoneInfo) -> None:
    oldest = _window_start(now, zone, MAX_WINDOW_MONTHS)
    record["months"] = {k: v for k, v in (record.get("months") or {}).items() if k >= oldest}


def _window_start(now: str, zone: ZoneInfo, months: int) -> str:
    first = parse(now).astimezone(zone).date().replace(day=1)
    return add_months(first, -(months - 1)).strftime("%Y-%m")


def qualifying_value(record: TierRecord, ladder: Ladder, now: str) -> Decimal:
    """The basis summed over the window's months (the current month included). Never the
    spendable balance, and redemptions never enter it: only purchases and their returns do."""
    start = _window_start(now, ladder.zone, ladder.window_months)
    end = month_of(now, ladder.zone)
    total = Decimal(0)
    for key, totals in (record.get("months") or {}).items():
        if start <= key <= end:
            if ladder.basis is Basis.ELIGIBLE_SPEND:
                total += Decimal(str(totals.get("spend") or 0))
            else:
                total += Decimal(int(totals.get("points") or 0))
    return total


# --- moving between tiers -----------------------------------------------------------------


@dataclass
class TierEvent:
    move: Move
    from_code: str | None
    to_code: str | None
    qualifying_value: Decimal
    retained_until: str | None
    reason: str  # purchase, retention, manual, manual_ended, evaluation


@dataclass
class Outcome:
    record: TierRecord
    events: list[TierEvent] = field(default_factory=list)

    @property
    def effective_changed(self) -> bool:
        return any(e.move is not Move.RETAINED for e in self.events)


def _computed(record: TierRecord, name: str) -> str | None:
    tier = record.get("tier")
    return str(tier[name]) if tier and tier.get(name) else None  # type: ignore[literal-required]


def manual_active(record: TierRecord, now: str) -> ManualTier | None:
    manual = record.get("manual")
    return manual if manual and str(manual.get("until") or "") > now else None


def effective(record: TierRecord, ranks: Mapping[str, int], now: str, holds: bool = True) -> str | None:
    """The tier the customer holds: a live manual tier, or the computed one; a manual floor
    gives way to a better computed tier (a manual tier is a floor only when it says so).
    None while the program status holds no ranked statuses (a card's `new` owner)."""
    if not holds:
        return None
    computed = _computed(record, "code")
    manual = manual_active(record, now)
    if manual is None:
        return computed
    if manual.get("floor") and computed and _better(computed, manual["code"], ranks):
        return computed
    return manual["code"]


def _better(a: str | None, b: str | None, ranks: Mapping[str, int]) -> bool:
    """Whether tier `a` ranks above tier `b` (no tier ranks below every tier)."""
    if a is None:
        return False
    if b is None:
        return True
    return ranks.get(a, 10**9) < ranks.get(b, 10**9)


def _retarget(
    record: TierRecord, ranks: Mapping[str, int], now: str, value: Decimal, reason: str, holds: bool
) -> list[TierEvent]:
    """Set `effective` from the record; an event when it moved."""
    before = record.get("effective")
    after = effective(record, ranks, now, holds)
    record["effective"] = after
    if before == after:
        return []
    move = Move.UPGRADED if _better(after, before, ranks) else Move.DOWNGRADED
    until = _computed(record, "retained_until")
    return [TierEvent(move, before, after, value, until, reason)]


def on_activity(
    record: TierRecord, ladder: Ladder, ranks: Mapping[str, int], now: str, holds: bool = True
) -> Outcome:
    """After a purchase (or its return): an upgrade when the value reaches a higher tier's
    attain threshold. A return can lower the value but never downgrades here: only the
    retention check does."""
    rec = cast(TierRecord, dict(record))
    value = qualifying_value(rec, ladder, now)
    reached = ladder.attained(value)
    current = _computed(rec, "code")
    if reached is not None and _better(reached.code, current, ranks):
        rec["tier"] = {"code": reached.code, "reached_at": now, "retained_until": ladder.retention_end(now)}
    return Outcome(rec, _retarget(rec, ranks, now, value, "purchase", holds))


def at_check(
    record: TierRecord, ladder: Ladder, ranks: Mapping[str, int], now: str, holds: bool = True
) -> Outcome:
    """The retention check, when the computed tier's retention or a manual tier has ended."""
    rec = cast(TierRecord, dict(record))
    value = qualifying_value(rec, ladder, now)
    events: list[TierEvent] = []
    manual = rec.get("manual")
    reason = "retention"
    if manual and str(manual.get("until") or "") <= now:
        rec["manual"] = None
        reason = "manual_ended"
    computed = rec.get("tier")
    if computed and str(computed["retained_until"]) <= now:
        step = ladder.step(computed["code"])
        if step is not None and value >= step.maintain:
            # Retained from the end of the last period, so a late check shifts nothing.
            until = ladder.retention_end(computed["retained_until"])
            rec["tier"] = {**computed, "retained_until": until}
            if holds and rec.get("effective") == computed["code"]:
                events.append(
                    TierEvent(Move.RETAINED, computed["code"], computed["code"], value, until, reason)
                )
        else:
            target = _downgrade_target(ladder, computed["code"], value)
            rec["tier"] = (
                {"code": target.code, "reached_at": now, "retained_until": ladder.retention_end(now)}
                if target is not None
                else None
            )
    events.extend(_retarget(rec, ranks, now, value, reason, holds))
    return Outcome(rec, events)


def _downgrade_target(ladder: Ladder, code: str, value: Decimal) -> Step | None:
    position = ladder.position(code)
    if ladder.downgrade is Downgrade.ONE_DOWN and position >= 0:
        return ladder.steps[position - 1] if position > 0 else None
    return ladder.maintained(value)  # recompute (or a tier no longer in the ladder)


def evaluate(
    record: TierRecord, ladder: Ladder, ranks: Mapping[str, int], now: str, holds: bool = True
) -> Outcome:
    """A re-evaluation job after the ladder changed: up to what the value attains, down to
    what it maintains (a tier no longer in the ladder is recomputed)."""
    rec = cast(TierRecord, dict(record))
    value = qualifying_value(rec, ladder, now)
    computed = rec.get("tier")
    current = computed["code"] if computed else None
    reached = ladder.attained(value)
    target: Step | None
    if _better(reached.code if reached else None, current, ranks):
        target = reached
    elif current is not None and (step := ladder.step(current)) is not None and value >= step.maintain:
        target = step
    else:
        target = ladder.maintained(value)
    if (target.code if target else None) != current:
        rec["tier"] = (
            {"code": target.code, "reached_at": now, "retained_until": ladder.retention_end(now)}
            if target is not None
            else None
        )
    return Outcome(rec, _retarget(rec, ranks, now, value, "evaluation", holds))


def set_manual(
    record: TierRecord,
    manual: ManualTier | None,
    ladder: Ladder,
    ranks: Mapping[str, int],
    now: str,
    holds: bool = True,
) -> Outcome:
    rec = cast(TierRecord, dict(record))
    rec["manual"] = manual
    value = qualifying_value(rec, ladder, now)
    return Outcome(rec, _retarget(rec, ranks, now, value, "manual" if manual else "manual_ended", holds))


def due_at(record: TierRecord) -> str | None:
    """When the retention check has work for this customer (its place in the due index)."""
    moments = [str(_computed(record, "retained_until") or "")]
    manual = record.get("manual")
    if manual:
        moments.append(str(manual.get("until") or ""))
    moments = [m for m in moments if m]
    return min(moments) if moments else None


@dataclass(frozen=True)
class NextTier:
    code: str
    missing: Decimal


def next_tier(record: TierRecord, ladder: Ladder, now: str) -> NextTier | None:
    """The tier above the computed one and what the qualifying value still lacks for it."""
    position = ladder.position(_computed(record, "code"))
    if position + 1 >= len(ladder.steps):
        return None
    step = ladder.steps[position + 1]
    return NextTier(step.code, max(Decimal(0), step.attain - qualifying_value(record, ladder, now)))


# --- the ladder against the status catalog ---------------------------------------------------


def ladder_problems(
    tiers: Sequence[Mapping[str, Any]], definitions: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """(field, message) for each way a ladder does not fit the catalog (empty when it does):
    unknown codes, codes given by a rule, thresholds that do not rise as the rank improves."""
    problems: list[tuple[str, str]] = []
    for i, tier in enumerate(tiers):
        definition = definitions.get(str(tier["code"]))
        if definition is None:
            problems.append((f"tiers[{i}].code", f"status {tier['code']} is not defined"))
        elif definition.get("rule"):
            problems.append(
                (
                    f"tiers[{i}].code",
                    f"status {tier['code']} is given by a rule; a tier is reached by thresholds",
                )
            )
    if problems:
        return problems
    by_rank = sorted(tiers, key=lambda t: -int(definitions[str(t["code"])]["rank"]))  # lowest tier first
    for lower, higher in pairwise(by_rank):
        for threshold in ("attain", "maintain"):
            if Decimal(str(higher[threshold])) <= Decimal(str(lower[threshold])):
                problems.append(
                    (
                        "tiers",
                        f"{threshold} must rise as the rank improves: {higher['code']} "
                        f"(rank {definitions[str(higher['code'])]['rank']}) needs more than {lower['code']} "
                        f"(rank {definitions[str(lower['code'])]['rank']})",
                    )
                )
    return problems


def ranks_of(definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {code: int(d["rank"]) for code, d in definitions.items()}


def codes_of(stored_ladder: Mapping[str, Any] | None) -> set[str]:
    """The tier codes of a stored ladder: statuses that are reached, never assigned by hand."""
    return {str(t["code"]) for t in (stored_ladder or {}).get("tiers") or []}
