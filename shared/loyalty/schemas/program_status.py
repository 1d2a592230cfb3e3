"""Program-status requests and results: staff change, opt-out, exclusion (docs/design.md#http-api)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from loyalty.domain.lifecycle import LifecycleEvent, ProgramStatus
from loyalty.schemas.common import ExpectedVersion, Reason, RequestModel


class ProgramStatusChange(RequestModel):
    status: ProgramStatus
    reason: Reason | None = None
    expected_version: ExpectedVersion | None = None


class OptOutRequest(RequestModel):
    reason: Reason | None = None
    expected_version: ExpectedVersion | None = None


class ExclusionRequest(RequestModel):
    reason: Reason | None = None
    expected_version: ExpectedVersion | None = None


class StatusChangeResult(BaseModel):
    """What a status change did. The whole profile is one GET away; returning it here would
    cost a read the one-request path exists to avoid."""

    customer_id: str
    # null when the change was applied without a read and the status it started from decides
    # the event (pending: invite from imported, re-invite from inactive); the caller knows the
    # status it saw at `expected_version`, and the customer's history names the event.
    event: LifecycleEvent | None
    possible_events: dict[str, str] | None = Field(
        default=None, description="when `event` is null: the event for each status the change may start from"
    )
    program_status: ProgramStatus
    version: int
    updated_at: str
