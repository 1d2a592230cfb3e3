"""Field types and base models every capability's schemas share (one definition per concept)."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from loyalty.domain.cards import CARD_NUMBER_PATTERN
from loyalty.domain.ids import ID_PATTERN
from loyalty.domain.normalize import normalize_email, normalize_phone

Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalize_email)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalize_phone)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
CardNumber = Annotated[str, StringConstraints(strip_whitespace=True, pattern=CARD_NUMBER_PATTERN)]
# The secret printed with a packed card (a scratch field), given by a customer binding it.
CardSecret = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z]{4,32}$")]
CustomerIdRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)]
# Free text staff attach to a change (kept in the history, erased with the customer).
Reason = Annotated[str, StringConstraints(max_length=500)]
AttributeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# Bounded so 100 attributes stay far below DynamoDB's 400 KB item size.
AttributeText = Annotated[str, StringConstraints(max_length=1000)]
AttributeValue = AttributeText | int | float | bool | None
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=100)]
ExpectedVersion = Annotated[int, Field(ge=1)]


class RequestModel(BaseModel):
    """Bodies refuse unknown fields: a client cannot set `program_status`, `version`, ..."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
