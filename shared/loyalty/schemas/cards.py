"""Card requests and views: packing, block/unblock, attach, replace (docs/design.md#cards)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from loyalty.domain.cards import MAX_BATCH, CardState
from loyalty.schemas.common import CardNumber, CardSecret, RequestModel


class CardBatch(RequestModel):
    """Either `numbers`, or a generated range `{prefix, start, count, luhn}`."""

    numbers: Annotated[list[CardNumber], Field(min_length=1, max_length=MAX_BATCH)] | None = None
    prefix: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{0,24}$")] | None = None
    start: Annotated[int, Field(ge=0, le=10**20)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_BATCH)] | None = None
    width: Annotated[int, Field(ge=1, le=24)] | None = None
    luhn: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> CardBatch:
        ranged = self.prefix is not None or self.start is not None or self.count is not None
        if self.numbers is not None and ranged:
            raise ValueError("give either numbers or prefix/start/count, not both")
        if self.numbers is None and (self.start is None or self.count is None):
            raise ValueError("give numbers, or start and count (with an optional prefix)")
        if self.luhn and self.prefix and not self.prefix.isdigit():
            raise ValueError("a Luhn check digit needs a numeric prefix")
        return self


class CardPatch(RequestModel):
    blocked: bool


class CardAttach(RequestModel):
    card_number: CardNumber
    card_secret: CardSecret | None = None  # required from a customer, not from staff


class CardReplacement(RequestModel):
    new_card_number: CardNumber
    new_card_secret: CardSecret | None = None  # required from a customer, not from staff


class CardSummary(BaseModel):
    """A card as docs/design.md#resource-shapes names it: `{number, state, customer_id}`."""

    number: str
    state: CardState
    customer_id: str


class PackedCard(CardSummary):
    """A card as packing reports it: with the secret to print on it (shown only here)."""

    secret: str


class Card(CardSummary):
    previous_state: CardState | None = None
    blocked_by: str | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    version: int
    created_at: str
    updated_at: str


class CardFailure(BaseModel):
    number: str
    code: str
    message: str


class CardBatchReport(BaseModel):
    requested: int
    created: int
    failed: int
    cards: list[PackedCard]
    errors: list[CardFailure]
