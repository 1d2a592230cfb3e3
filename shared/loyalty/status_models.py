"""Request and response models of the ranked statuses (DESIGN.md "Statuses")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from loyalty.models import RequestModel, StatusRef
from loyalty.statuses import Rule, check_rule_size

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # case-sensitive slug
StatusCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
MAX_DEFINITIONS = 200
MAX_BULK = 10_000

CheckedRule = Annotated[Rule, AfterValidator(check_rule_size)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class Modifiers(RequestModel):
    """Incentive modifiers a status grants; null means the status does not set it."""

    reward_expiry_extra_days: int | None = Field(default=None, ge=0, le=3650)
    discount_percent: float | None = Field(default=None, ge=0, le=100)
    tier_points_multiplier: float | None = Field(default=None, gt=0, le=100)
    free_delivery: bool | None = None


class StatusDefinitionCreate(RequestModel):
    code: StatusCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    # Omitted: the next rank after the last one.
    rank: int | None = Field(default=None, ge=1, le=10_000)
    customer_facing: bool = False
    modifiers: Modifiers = Field(default_factory=Modifiers)
    rule: CheckedRule | None = None


class StatusDefinitionPatch(RequestModel):
    """Fields present are set; `rule: null` removes the rule (its rule assignments go too)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    rank: int | None = Field(default=None, ge=1, le=10_000)
    customer_facing: bool | None = None
    modifiers: Modifiers | None = None
    rule: CheckedRule | None = None

    @model_validator(mode="after")
    def _not_null(self) -> StatusDefinitionPatch:
        for name in ("name", "rank", "customer_facing", "modifiers"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class StatusOrder(RequestModel):
    codes: list[StatusCode] = Field(min_length=1, max_length=MAX_DEFINITIONS)


class StatusAssign(RequestModel):
    expires_at: datetime | None = None
    reason: Reason | None = None


class BulkAssignment(RequestModel):
    action: Literal["assign", "remove"]
    customer_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_BULK
    )
    emails: list[Annotated[str, StringConstraints(max_length=254)]] = Field(
        default_factory=list, max_length=MAX_BULK
    )
    expires_at: datetime | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _size(self) -> BulkAssignment:
        total = len(self.customer_ids) + len(self.emails)
        if total == 0:
            raise ValueError("give customer_ids or emails")
        if total > MAX_BULK:
            raise ValueError(f"at most {MAX_BULK} customers per request, got {total}")
        if self.action == "remove" and self.expires_at is not None:
            raise ValueError("expires_at only goes with assign")
        return self


class StatusJob(BaseModel):
    """A background job over a business's customers and how far it got."""

    job_id: str
    kind: Literal["evaluate", "rerank", "delete"]
    codes: list[str]
    state: Literal["queued", "running", "completed", "failed"]
    processed: int = 0
    changed: int = 0
    failed: int = 0
    error: str | None = None
    created_at: str
    updated_at: str
    finished_at: str | None = None


class StatusDefinition(BaseModel):
    code: str
    name: str
    description: str | None = None
    rank: int
    customer_facing: bool
    modifiers: dict[str, Any] = Field(default_factory=dict)
    rule: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    # The latest background job about this definition (rule evaluation, re-rank).
    job: StatusJob | None = None


class StatusCatalog(BaseModel):
    items: list[StatusDefinition]
    next_cursor: str | None = None
    version: int
    deleting: list[str] = Field(default_factory=list)
    jobs: list[StatusJob] = Field(default_factory=list)


class BulkFailure(BaseModel):
    customer_id: str | None = None
    email: str | None = None
    message: str


class BulkReport(BaseModel):
    code: str
    action: str
    requested: int
    changed: int
    unchanged: int
    failed: int
    errors: list[BulkFailure]


class Entitlement(BaseModel):
    modifier: str
    value: Any
    granted_by: str | None  # null for a customer when the granting status is not customer-facing


class Entitlements(BaseModel):
    customer_id: str
    best_status: str | None
    statuses: list[StatusRef]
    modifiers: dict[str, Any]
    entitlements: list[Entitlement]
    policy: str = "best_status_wins_then_fill_by_rank"
