"""JSON imports: up to 1,000 rows in one request, run to the end within it (or a dry run)."""

from __future__ import annotations

import hashlib
import json

from loyalty.domain.clock import now_iso
from loyalty.domain.errors import NotFound
from loyalty.domain.principal import ADMINS, Principal
from loyalty.repository import imports as repo
from loyalty.schemas.imports import (
    ImportReport,
    ImportRequest,
    ImportState,
)
from loyalty.services.imports.runs import (
    MAX_STORED_ERRORS,
    ImportBusy,
    RemainingMs,
    claim,
    counts_of,
    new_report,
    to_report,
)
from loyalty.services.imports.session import RowIn, RowOutcome, Session, chunks


def json_import_id(business_id: str, body: ImportRequest, idempotency_key: str | None) -> str:
    """Same business and same body (or same Idempotency-Key) -> the same import."""
    source = idempotency_key or json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{business_id}\x1fjson\x1f{source}".encode()).hexdigest()[:32]


def import_json(
    principal: Principal,
    body: ImportRequest,
    *,
    idempotency_key: str | None = None,
    remaining_ms: RemainingMs = lambda: 29_000,
    request_id: str = "",
) -> ImportReport:
    principal.require(ADMINS)
    bid = principal.business_id
    import_id = json_import_id(bid, body, idempotency_key)
    rows = [RowIn(i + 1, row) for i, row in enumerate(body.customers)]
    if body.dry_run:
        return _dry_run(principal, import_id, rows)

    Session(principal, import_id)  # refuses a role that may not import before anything is stored
    repo.create_report(new_report(bid, import_id, "json", principal, rows_expected=len(rows)))
    report = repo.get_report(bid, import_id)
    if report is None:  # pragma: no cover - it was just written
        raise NotFound("import not found", {"import_id": import_id})
    if report["state"] != ImportState.RUNNING.value:
        return to_report(report)  # a re-post of a finished import changes nothing
    run = claim(bid, import_id, request_id, remaining_ms)
    if run is None:
        raise ImportBusy("this import is still running; poll GET /v1/imports/{id}", {"import_id": import_id})
    session = Session(principal, import_id)
    try:
        # A JSON import is short (<= 1,000 rows): it runs to the end within the request.
        run.process(session, rows[run.rows_done :], lambda _row: {}, may_pause=False)
    except repo.LeaseLost as exc:
        raise ImportBusy("another run took this import over", {"import_id": import_id}) from exc
    except Exception:
        repo.release(bid, import_id, run.owner)
        raise
    return run.finish(ImportState.COMPLETED)


def _dry_run(principal: Principal, import_id: str, rows: list[RowIn]) -> ImportReport:
    """The report the import would produce; nothing is written."""
    session = Session(principal, import_id, dry_run=True)
    outcomes: list[RowOutcome] = []
    for chunk in chunks(rows):
        outcomes.extend(session.process(chunk))
    errors = [o.error for o in outcomes if o.error]
    at = now_iso()
    return ImportReport(
        import_id=import_id,
        state=ImportState.COMPLETED,
        source="json",
        dry_run=True,
        total=len(rows),
        errors=errors[:MAX_STORED_ERRORS],
        error_count=len(errors),
        errors_truncated=len(errors) > MAX_STORED_ERRORS,
        created_at=at,
        updated_at=at,
        completed_at=at,
        **counts_of(outcomes),
    )
