"""Invitation settings, the invitee's answer and the scheduled run's report (docs/design.md#invitations)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from loyalty.domain.lifecycle import ProgramStatus
from loyalty.schemas.common import Email, Reason, RequestModel

ProgramName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class InvitationSettings(RequestModel):
    """PUT body and stored shape. PUT replaces the whole settings; omitted fields take defaults."""

    enabled: bool = False
    batch_size: int = Field(default=100, ge=1, le=10000)
    # docs/design.md#invitations: at most one invitation e-mail per customer per 7 days by default.
    reminder_after_days: int = Field(default=7, ge=1, le=365)
    max_reminders: int = Field(default=2, ge=0, le=10)
    sender: Email | None = None
    program_name: ProgramName | None = None


class InvitationSettingsView(InvitationSettings):
    updated_at: str | None = None


class InviteRequest(RequestModel):
    """Optional body of `POST /v1/customers/{id}/invitations`.

    `override_cadence` (admin only) sends within `reminder_after_days` of the last e-mail;
    it needs a `reason`, which the customer's history keeps with the invitation.
    """

    override_cadence: bool = False
    reason: Reason | None = Field(default=None, validate_default=True)

    @field_validator("reason")
    @classmethod
    def _reason_for_override(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("override_cadence") and not (value or "").strip():
            raise ValueError("a reason is required to override the invitation cadence")
        return value


class InvitationLink(BaseModel):
    """What the page behind an e-mail link shows before the invitee presses its button."""

    choice: Literal["accept", "decline"]
    program_name: str | None = None


class InvitationAnswer(BaseModel):
    customer_id: str
    program_status: ProgramStatus
    program_name: str | None = None


class RunReport(BaseModel):
    """What one scheduled run did (returned by the schedule invocation, logged)."""

    businesses: int = 0
    invited: int = 0
    reminded: int = 0
    stopped: int = 0
    skipped: int = 0
    failed: int = 0
    out_of_time: bool = False
