"""Pydantic v2 models: request bodies (strict, unknown fields refused) and responses."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from loyalty.cards import CardState
from loyalty.lifecycle import ProgramStatus
from loyalty.normalize import normalize_email, normalize_phone

Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalize_email)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalize_phone)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AttributeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
AttributeValue = str | int | float | bool | None
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=100)]


class RequestModel(BaseModel):
    """Bodies refuse unknown fields: a client cannot set `program_status`, `version`, ..."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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

    expected_version: int | None = Field(default=None, ge=1)


class ProgramStatusChange(RequestModel):
    status: ProgramStatus
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    expected_version: int | None = Field(default=None, ge=1)


class StatusRef(BaseModel):
    code: str
    name: str
    rank: int
    expires_at: str | None = None


class CardRef(BaseModel):
    number: str
    state: CardState


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
    balance: int = 0
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
    event: str | None  # null only if the event a change depended on is missing from history
    from_status: ProgramStatus | None = None
    to_status: ProgramStatus | None = None
    actor: dict[str, str]
    reason: str | None = None
    at: str
    details: dict[str, Any] = Field(default_factory=dict)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
