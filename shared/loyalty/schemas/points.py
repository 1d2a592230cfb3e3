"""Points requests and views (docs/design.md#points-ledger; field names from the HTTP contract)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator, model_validator

from loyalty.domain.points import ExpiryPolicy, ReturnPolicy
from loyalty.schemas.common import CardNumber, Reason, RequestModel

ExternalRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:@|-]{1,128}$")]
# Money in the purchase's currency: positive, at most 2 decimals' worth of precision kept.
Amount = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), max_digits=14, decimal_places=4)]
Points = Annotated[int, Field(gt=0, le=10_000_000)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (for example Europe/Paris)") from exc
    return name


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_zone)]


class Expiry(RequestModel):
    policy: ExpiryPolicy = ExpiryPolicy.NEVER
    # days: N days; months: N months (month-end rounding); period_end: N whole periods after
    # the current one (0: the end of this one); inactivity: N months without a purchase.
    value: int = Field(default=0, ge=0, le=3650)
    period: Literal["month", "quarter", "year"] = "year"

    @model_validator(mode="after")
    def _value_fits(self) -> Expiry:
        if (
            self.policy in (ExpiryPolicy.DAYS, ExpiryPolicy.MONTHS, ExpiryPolicy.INACTIVITY)
            and self.value < 1
        ):
            raise ValueError(f"a {self.policy.value} policy needs a value of at least 1")
        if self.policy is ExpiryPolicy.MONTHS and self.value > 120:
            raise ValueError("at most 120 months")
        if self.policy is ExpiryPolicy.INACTIVITY and self.value > 120:
            raise ValueError("at most 120 months of inactivity")
        return self


class PointsSettings(RequestModel):
    """PUT replaces the whole settings; omitted fields take their defaults."""

    points_per_unit: Annotated[Decimal, Field(gt=0, le=1000, max_digits=10, decimal_places=4)] = Decimal(1)
    rounding: Literal["down", "nearest"] = "down"
    pending_days: int = Field(default=0, ge=0, le=365)  # the return window
    expiry: Expiry = Field(default_factory=Expiry)
    return_policy: ReturnPolicy = ReturnPolicy.ALLOW_DEBT
    reminder_days: Annotated[list[Annotated[int, Field(ge=1, le=365)]], Field(max_length=5)] = Field(
        default_factory=lambda: [30, 7]
    )
    time_zone: TimeZone = "UTC"
    anonymous_can_redeem: bool = False
    new_card_can_redeem: bool = False

    @field_validator("reminder_days")
    @classmethod
    def _distinct_reminders(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("must not repeat a day")
        return sorted(days, reverse=True)


class PointsSettingsView(PointsSettings):
    updated_at: str | None = None


class Purchase(RequestModel):
    external_id: ExternalRef
    occurred_at: datetime
    amount: Amount
    eligible_amount: Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), max_digits=14, decimal_places=4)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    channel: Annotated[str, StringConstraints(max_length=64)] | None = None
    card_number: CardNumber | None = None

    @model_validator(mode="after")
    def _eligible_within_amount(self) -> Purchase:
        if self.eligible_amount > self.amount:
            raise ValueError("eligible_amount cannot exceed amount")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (for example 2026-12-01T10:00:00Z)")
        return self


class PurchaseReturn(RequestModel):
    external_id: ExternalRef
    eligible_amount: Amount


class Redemption(RequestModel):
    external_id: ExternalRef
    points: Points
    reward: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    hold: bool = False


class Adjustment(RequestModel):
    external_id: ExternalRef
    points: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    reason: Reason
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _not_zero(self) -> Adjustment:
        if self.points == 0:
            raise ValueError("points must not be 0")
        if self.expires_at is not None and self.points < 0:
            raise ValueError("expires_at only goes with a credit")
        return self


class LotRef(BaseModel):
    lot_id: str
    points: int


class LedgerEntry(BaseModel):
    entry_id: str
    type: str
    points: int
    balance_after: int
    external_id: str | None = None
    lots: list[LotRef] = Field(default_factory=list)
    occurred_at: str
    recorded_at: str
    actor: dict[str, str]
    details: dict[str, Any] = Field(default_factory=dict)


class LotView(BaseModel):
    lot_id: str
    points: int
    remaining: int
    state: Literal["pending", "available", "expired"]
    earned_at: str
    available_at: str
    expires_at: str | None


class Expiring(BaseModel):
    date: str
    points: int


class BalanceView(BaseModel):
    customer_id: str
    available: int
    pending: int
    held: int
    debt: int
    lifetime_earned: int
    lifetime_redeemed: int
    expired_total: int
    expiring: list[Expiring]


class PointsResult(BaseModel):
    """What a points command did: its entries and the balance it left."""

    customer_id: str
    external_id: str
    entries: list[LedgerEntry]
    balance: BalanceView
    # Redemptions: held, captured, voided or reversed. Purchases: what was earned and how.
    state: str | None = None
    points: int | None = None
    multiplier: dict[str, Any] | None = None
    tier: dict[str, Any] | None = None  # {code, move} when this purchase moved the customer's tier
    replayed: bool = False


class PointsRunReport(BaseModel):
    wallets: int = 0
    expired_lots: int = 0
    activated_lots: int = 0
    reminders_sent: int = 0
    reminders_skipped: int = 0
    out_of_time: bool = False
