"""Customer requests and views: create, patch, the profile, its history (docs/design.md#http-api)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty.domain.cards import CardState
from loyalty.domain.lifecycle import AuditKind, ProgramStatus
from loyalty.domain.tiers import Basis
from loyalty.schemas.common import (
    Attributes,
    Email,
    ExpectedVersion,
    ExternalId,
    Name,
    Phone,
    RequestModel,
)


class CustomerFields(RequestModel):
    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    external_id: ExternalId | None = None
    attributes: Attributes | None = None
    marketing_consent: bool | None = None


class CustomerCreate(CustomerFields):
    @model_validator(mode="after")
    def _needs_identifier(self) -> CustomerCreate:
        if not (self.email or self.phone or self.external_id):
            raise ValueError("one of email, phone or external_id is required")
        return self


class CustomerPatch(CustomerFields):
    """Fields present are set (null clears them); attributes are merged key by key (null deletes)."""

    expected_version: ExpectedVersion | None = None


class StatusRef(BaseModel):
    """A ranked status the customer holds, ordered by rank in lists (1 first)."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    rank: int
    expires_at: str | None = None


class CardRef(BaseModel):
    number: str
    state: CardState


class ManualTierView(BaseModel):
    code: str
    until: str
    floor: bool


class NextTierView(BaseModel):
    code: str
    missing: Decimal


class CustomerTier(BaseModel):
    customer_id: str
    code: str | None
    qualifying_value: Decimal
    basis: Basis | None
    retained_until: str | None
    next: NextTierView | None
    manual: ManualTierView | None


class Customer(BaseModel):
    customer_id: str
    program_status: ProgramStatus
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    external_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    marketing_consent: bool = False
    statuses: list[StatusRef] = Field(default_factory=list)
    best_status: str | None = None
    cards: list[CardRef] = Field(default_factory=list)
    merged_into: str | None = None
    # Available points (docs/design.md#points-ledger), read with the profile; null in lists.
    balance: int | None = None
    # The tier (docs/design.md#tiers) when the business has a ladder; null in lists.
    tier: CustomerTier | None = None
    invited_at: str | None = None
    invitation_count: int = 0
    last_invited_at: str | None = None
    terms_version: str | None = None
    terms_accepted_at: str | None = None
    version: int
    created_at: str
    updated_at: str


class AuditEvent(BaseModel):
    version: int
    event: AuditKind | None  # null only if the event a change depended on is missing from history
    from_status: ProgramStatus | None = None
    to_status: ProgramStatus | None = None
    actor: dict[str, str]
    reason: str | None = None
    at: str
    details: dict[str, Any] = Field(default_factory=dict)
