"""Request and response models of the program-status routes (PUT status, opt-out, exclusion)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from loyalty.lifecycle import ProgramStatus
from loyalty.models import RequestModel

Reason = Annotated[str, StringConstraints(max_length=500)]


class OptOutRequest(RequestModel):
    reason: Reason | None = None
    expected_version: int | None = Field(default=None, ge=1)


class ExclusionRequest(RequestModel):
    reason: Reason | None = None
    expected_version: int | None = Field(default=None, ge=1)


class StatusChangeResult(BaseModel):
    """What a status change did. The whole profile is one GET away; returning it here would
    cost a read the one-request path exists to avoid."""

    customer_id: str
    # null when the change was applied without a read and the status it started from decides
    # the event (pending: invite from imported, re-invite from inactive); the caller knows the
    # status it saw at `expected_version`, and the customer's history names the event.
    event: str | None
    possible_events: dict[str, str] | None = Field(
        default=None, description="when `event` is null: the event for each status the change may start from"
    )
    program_status: ProgramStatus
    version: int
    updated_at: str
