"""Registration and anonymous sign-up requests (docs/design.md#http-api)."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints, model_validator

from loyalty.schemas.common import (
    CardNumber,
    CardSecret,
    CustomerIdRef,
    Email,
    ExternalId,
    Name,
    Phone,
    RequestModel,
)

DeviceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
TermsVersion = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Registration(RequestModel):
    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    external_id: ExternalId | None = None
    card_number: CardNumber | None = None
    customer_id: CustomerIdRef | None = None
    terms_version: TermsVersion | None = None
    marketing_consent: bool | None = None
    card_secret: CardSecret | None = None  # required from a customer binding a packed card
    # The token from an invitation e-mail: proof that the invited profile is the caller's.
    invitation_token: Annotated[str, StringConstraints(min_length=16, max_length=256)] | None = None

    @model_validator(mode="after")
    def _needs_contact(self) -> Registration:
        # A registered member must be reachable: that is what registration adds to a profile.
        if not (self.email or self.phone):
            raise ValueError("email or phone is required to register")
        return self


class AnonymousSignup(RequestModel):
    device_id: DeviceId
    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    virtual_card: bool = False
