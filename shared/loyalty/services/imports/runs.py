"""An import's report and one Lambda run's hold on it: the lease, the fenced checkpoint that
advances the report with each chunk, and the report view."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.domain.clock import now, now_iso
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.principal import BACK_OFFICE, Principal
from loyalty.observability import CUSTOMERS_CREATED, IMPORT_ROWS, IMPORTS_FINISHED, count
from loyalty.repository import imports as repo
from loyalty.schemas.imports import (
    ImportReport,
    ImportState,
)
from loyalty.services.imports.session import RowIn, RowOutcome, Session, chunks

MAX_STORED_ERRORS = 1000
# Stop taking new chunks when less than this is left of the Lambda run.
TIME_RESERVE_MS = 60_000
LEASE_MARGIN_SECONDS = 30

RemainingMs = Callable[[], int]

_OUTCOME_CODES = {"created": "c", "updated": "u", "unchanged": "n", "suppressed": "s", "failed": "f"}


class ImportBusy(Conflict):
    code = "import_in_progress"


def to_report(item: Mapping[str, Any]) -> ImportReport:
    size = item.get("size_bytes")
    progress = None
    if item.get("source") == "csv" and size:
        done = item["state"] in (ImportState.COMPLETED.value, ImportState.FAILED.value)
        progress = 1.0 if done else round(min(1.0, int(item.get("offset") or 0) / int(size)), 4)
    errors = item.get("errors") or []
    data = {**item, "errors": errors, "progress": progress}
    data["errors_truncated"] = int(item.get("error_count") or 0) > len(errors)
    return ImportReport.model_validate({k: v for k, v in data.items() if k in ImportReport.model_fields})


def counts_of(outcomes: list[RowOutcome]) -> dict[str, int]:
    counts = dict.fromkeys(_OUTCOME_CODES, 0)
    for o in outcomes:
        counts[o.outcome] += 1
    return counts


def _outcome_item(outcomes: list[RowOutcome]) -> dict[str, Any]:
    return {
        "first_row": outcomes[0].row,
        "last_row": outcomes[-1].row,
        # One letter per row keeps a 250-row chunk in a few kilobytes.
        "outcomes": "".join(_OUTCOME_CODES[o.outcome] for o in outcomes),
        "rows": [o.row for o in outcomes],
        "customer_ids": [o.customer_id or "" for o in outcomes],
        "errors": [o.error.model_dump() for o in outcomes if o.error],
    }


def new_report(bid: str, import_id: str, source: str, principal: Principal, **extra: Any) -> dict[str, Any]:
    at = now_iso()
    return {
        "business_id": bid,
        "import_id": import_id,
        "source": source,
        "state": ImportState.RUNNING.value,
        "dry_run": False,
        "total": 0,
        "rows_done": 0,
        "offset": 0,
        "error_count": 0,
        "errors": [],
        "actor": principal.as_actor_record(),
        "created_at": at,
        "updated_at": at,
        **dict.fromkeys(_OUTCOME_CODES, 0),
        **extra,
    }


@dataclass
class ImportRun:
    """One Lambda run's hold on an import: the lease and the checkpoint it advances."""

    report: dict[str, Any]
    owner: str
    remaining_ms: RemainingMs

    @property
    def bid(self) -> str:
        return str(self.report["business_id"])

    @property
    def import_id(self) -> str:
        return str(self.report["import_id"])

    @property
    def rows_done(self) -> int:
        return int(self.report.get("rows_done") or 0)

    def lease_until(self) -> float:
        return now().timestamp() + self.remaining_ms() / 1000 + LEASE_MARGIN_SECONDS

    def checkpoint(
        self,
        outcomes: list[RowOutcome],
        sets: dict[str, Any] | None = None,
        *,
        release: bool = False,
        rows_done: int | None = None,
    ) -> None:
        errors = [o.error.model_dump() for o in outcomes if o.error]
        stored = int(self.report.get("error_count") or 0)
        keep = errors[: max(0, MAX_STORED_ERRORS - stored)]
        counts = counts_of(outcomes)
        counts["error_count"] = len(errors)
        done = rows_done if rows_done is not None else (outcomes[-1].row if outcomes else self.rows_done)
        values = {"updated_at": now_iso(), "total": done, **(sets or {})}
        if not release:
            values["lease_until"] = self.lease_until()
        cp = repo.Checkpoint(
            rows_done=done,
            sets=values,
            counts=counts,
            new_errors=keep,
            outcome_item=_outcome_item(outcomes) if outcomes else None,
            release=release,
        )
        repo.save_checkpoint(self.bid, self.import_id, self.owner, self.rows_done, cp)
        for outcome in _OUTCOME_CODES:
            count(IMPORT_ROWS, counts[outcome], outcome)
        count(CUSTOMERS_CREATED, counts["created"], "import")
        # Mirror what was stored so the next checkpoint is fenced on it.
        for name, n in counts.items():
            self.report[name] = int(self.report.get(name) or 0) + n
        self.report["errors"] = list(self.report.get("errors") or []) + keep
        self.report.update(values, rows_done=done)
        if release:
            self.report.pop("lease_owner", None)
            self.report.pop("lease_until", None)

    def finish(self, state: ImportState, message: str | None = None) -> ImportReport:
        at = now_iso()
        sets: dict[str, Any] = {"state": state.value, "completed_at": at}
        if message:
            sets["message"] = message
        self.checkpoint([], sets, release=True)
        count(IMPORTS_FINISHED, 1, state.value)
        return to_report(self.report)

    def process(
        self,
        session: Session,
        rows: Iterable[RowIn],
        on_chunk: Callable[[RowIn], dict[str, Any]],
        *,
        may_pause: bool = True,
    ) -> bool:
        """Process rows chunk by chunk; False when time ran short before the rows ended."""
        for chunk in chunks(rows):
            outcomes = session.process(chunk)
            self.checkpoint(outcomes, on_chunk(chunk[-1]))
            if may_pause and self.remaining_ms() < TIME_RESERVE_MS:
                return False
        return True


def claim(
    bid: str, import_id: str, request_id: str, remaining_ms: RemainingMs, *, resume_failed: bool = False
) -> ImportRun | None:
    owner = f"{request_id}:{uuid.uuid4().hex[:8]}"
    moment = now().timestamp()
    until = moment + remaining_ms() / 1000 + LEASE_MARGIN_SECONDS
    claimed = repo.claim(bid, import_id, owner, until, moment, now_iso(), resume_failed=resume_failed)
    return ImportRun(claimed, owner, remaining_ms) if claimed else None


def get_import(principal: Principal, import_id: str) -> ImportReport:
    principal.require(BACK_OFFICE)
    report = repo.get_report(principal.business_id, import_id, consistent=False)
    if report is None:
        raise NotFound("import not found", {"import_id": import_id})
    return to_report(report)
