"""Import requests and the import report (docs/design.md#imports)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from loyalty.schemas.common import RequestModel

MAX_JSON_ROWS = 1000


class ImportState(StrEnum):
    PENDING = "pending"  # upload URL handed out, the file has not arrived yet
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def _clip(text: str) -> str:
    # The report item keeps up to 1,000 errors and must stay well under DynamoDB's 400 KB.
    return text if len(text) <= 200 else text[:199] + "…"


class RowError(BaseModel):
    row: int  # data rows counted from 1
    field: Annotated[str, AfterValidator(_clip)]
    message: Annotated[str, AfterValidator(_clip)]


class ImportReport(BaseModel):
    import_id: str
    state: ImportState
    source: str
    dry_run: bool = False
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    failed: int = 0
    errors: list[RowError] = Field(default_factory=list)
    # All errors counted; `errors` keeps the first ones (the report item must stay small).
    error_count: int = 0
    errors_truncated: bool = False
    message: str | None = None
    # Share of the file read so far (CSV), for progress bars.
    progress: float | None = None
    size_bytes: int | None = None
    created_at: str
    updated_at: str
    completed_at: str | None = None


class ImportRequest(RequestModel):
    """`{"customers": [...], "dry_run": false}`: rows are checked one by one, not all or nothing."""

    customers: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_JSON_ROWS)]
    dry_run: bool = False


class UploadRequest(RequestModel):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


class UploadTicket(BaseModel):
    import_id: str
    upload_url: str
    method: str = "PUT"
    expires_in: int
    max_bytes: int
    report: ImportReport


class ImportContinuation(BaseModel):
    """The queue message that continues an import in a fresh Lambda run."""

    business_id: str
    import_id: str
