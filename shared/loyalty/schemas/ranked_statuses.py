"""Ranked-status requests and views: definitions, the rule language, assignments, jobs,
entitlements (docs/design.md#ranked-statuses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loyalty.domain.ranked_statuses import (
    MAX_IN_VALUES,
    MAX_RULE_CONDITIONS,
    MAX_RULE_DEPTH,
    ORDERED_OPERATORS,
    STATUS_CODE_PATTERN,
    Entitlement,
)
from loyalty.schemas.common import CustomerIdRef, Reason, RequestModel
from loyalty.schemas.customers import StatusRef

CODE_PATTERN = STATUS_CODE_PATTERN
StatusCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
MAX_DEFINITIONS = 200
MAX_BULK = 10_000

# --- the rule language (evaluated by loyalty.domain.ranked_statuses.evaluate) ------------

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool
AttributePath = Annotated[str, StringConstraints(pattern=r"^(attributes\.)?[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Rule(BaseModel):
    """One node of a rule: a condition or an `all` / `any` group (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    attribute: AttributePath | None = None
    operator: Operator | None = None
    # validate_default: `{"operator": "eq"}` without a value must fail too.
    value: Scalar | list[Scalar] | None = Field(default=None, validate_default=True)
    all: list[Rule] | None = Field(default=None, min_length=1, max_length=MAX_RULE_CONDITIONS)
    any: list[Rule] | None = Field(default=None, min_length=1, max_length=MAX_RULE_CONDITIONS)

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        operator = info.data.get("operator")
        if operator is None:
            return value  # the operator's own error (or a group) is reported instead
        if operator == "exists":
            if value is not None and not isinstance(value, bool):
                raise ValueError("exists takes true or false")
        elif operator == "in":
            if not isinstance(value, list) or not value:
                raise ValueError("in takes a non-empty list of values")
            if len(value) > MAX_IN_VALUES:
                raise ValueError(f"in takes at most {MAX_IN_VALUES} values")
        elif operator in ORDERED_OPERATORS:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{operator} takes a number or a string")
        elif value is None or isinstance(value, list):
            raise ValueError(f"{operator} takes one value (a string, number or boolean)")
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> Rule:
        shapes = [
            name
            for name, present in (
                ("condition", self.attribute is not None or self.operator is not None),
                ("all", self.all is not None),
                ("any", self.any is not None),
            )
            if present
        ]
        if len(shapes) != 1:
            raise ValueError("a rule is either {attribute, operator, value}, {all: [...]} or {any: [...]}")
        if shapes == ["condition"]:
            if self.attribute is None:
                raise ValueError("attribute is required")
            if self.operator is None:
                raise ValueError("operator is required")
        elif self.value is not None:
            raise ValueError("a group takes no value")
        return self

    def depth(self) -> int:
        children = self.all or self.any or []
        return 1 + max((c.depth() for c in children), default=0)

    def conditions(self) -> int:
        children = self.all or self.any
        return sum(c.conditions() for c in children) if children else 1


def check_rule_size(rule: Rule) -> Rule:
    """Bounds that keep evaluating a rule over every customer cheap."""
    if rule.depth() > MAX_RULE_DEPTH:
        raise ValueError(f"a rule nests at most {MAX_RULE_DEPTH} levels")
    if rule.conditions() > MAX_RULE_CONDITIONS:
        raise ValueError(f"a rule holds at most {MAX_RULE_CONDITIONS} conditions")
    return rule


def rule_to_data(rule: Rule) -> dict[str, Any]:
    """The stored form (plain JSON): what `evaluate` reads."""
    return rule.model_dump(exclude_none=True)


CheckedRule = Annotated[Rule, AfterValidator(check_rule_size)]


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
    customer_ids: list[CustomerIdRef] = Field(default_factory=list, max_length=MAX_BULK)
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
    kind: Literal["evaluate", "rerank", "delete", "tiers"]
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


class Entitlements(BaseModel):
    customer_id: str
    best_status: str | None
    statuses: list[StatusRef]
    modifiers: dict[str, Any]
    entitlements: list[Entitlement]
    policy: str = "best_status_wins_then_fill_by_rank"


class JobStep(BaseModel):
    """One RuleEvaluationQueue message: where a job's walk over customers stands."""

    job_id: str
    business_id: str
    position: int = 0
    cursor: str | None = None
