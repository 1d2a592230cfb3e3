"""Tier requests and views (docs/design.md#tiers): the ladder, a manual tier, re-evaluations
after the ladder changed (a customer's tier view is with the customer view, schemas.customers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from loyalty.domain.tiers import MAX_WINDOW_MONTHS, Basis, Downgrade, Retention
from loyalty.schemas.common import Reason, RequestModel
from loyalty.schemas.ranked_statuses import StatusCode, StatusJob

Threshold = Annotated[Decimal, Field(ge=0, le=10**12, max_digits=16, decimal_places=2)]
FixedDate = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
MAX_TIERS = 20


class TierStep(RequestModel):
    code: StatusCode
    attain: Threshold
    maintain: Threshold

    @model_validator(mode="after")
    def _maintain_at_or_below_attain(self) -> TierStep:
        if self.maintain > self.attain:
            raise ValueError("maintain must be at or below attain")
        return self


class TierLadder(RequestModel):
    """`PUT /v1/tiers`. Tiers are status definitions; list them in any order: they are
    ordered by their rank, and their thresholds must rise as the rank improves."""

    basis: Basis
    window_months: Annotated[int, Field(ge=1, le=MAX_WINDOW_MONTHS)]
    retention: Retention
    retention_months: Annotated[int, Field(ge=1, le=MAX_WINDOW_MONTHS)] = 12
    fixed_dates: Annotated[list[FixedDate], Field(max_length=12, validate_default=True)] = Field(
        default_factory=list
    )
    downgrade: Downgrade
    tiers: Annotated[list[TierStep], Field(min_length=1, max_length=MAX_TIERS)]

    @field_validator("tiers")
    @classmethod
    def _codes_unique(cls, tiers: list[TierStep]) -> list[TierStep]:
        codes = [t.code for t in tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("each tier code may appear once")
        return tiers

    @field_validator("fixed_dates")
    @classmethod
    def _dates_for_fixed_retention(cls, dates: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("retention") is Retention.FIXED_DATES and not dates:
            raise ValueError("give at least one MM-DD date for fixed_dates retention")
        return dates


class TierLadderView(BaseModel):
    basis: Basis | None = None
    window_months: int | None = None
    retention: Retention | None = None
    retention_months: int | None = None
    fixed_dates: list[str] = Field(default_factory=list)
    downgrade: Downgrade | None = None
    tiers: list[TierStep] = Field(default_factory=list)  # lowest first
    version: int = 0
    updated_at: str | None = None


class ManualTierSet(RequestModel):
    """`PUT /v1/customers/{id}/tier`. `floor` has no default: a manual tier is a floor only
    when whoever sets it says so."""

    code: StatusCode
    until: datetime
    floor: bool
    reason: Reason | None = None


class TierEvaluation(RequestModel):
    """`POST /v1/tiers/evaluations`: `dry_run` answers who would move; otherwise a job moves them."""

    dry_run: bool = True
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class TierMoveView(BaseModel):
    customer_id: str
    from_code: str | None
    to_code: str | None
    move: Literal["upgraded", "downgraded"]
    qualifying_value: Decimal


class TierEvaluationReport(BaseModel):
    dry_run: Literal[True] = True
    ladder_version: int
    customers: int
    upgrades: int
    downgrades: int
    unchanged: int
    moves: list[TierMoveView]  # the first `limit` customers who would move
    moves_truncated: bool


class TierEvaluationJob(BaseModel):
    dry_run: Literal[False] = False
    job: StatusJob


class TierCheckReport(BaseModel):
    checked: int = 0
    retained: int = 0
    downgraded: int = 0
    upgraded: int = 0
    skipped: int = 0
    conflicts: int = 0
    profiles_read: int = 0  # customers whose profile changed since their tier record saw it
    out_of_time: bool = False
