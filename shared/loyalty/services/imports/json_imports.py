"""JSON imports: up to 1,000 rows in one request, run to the end within it (or a dry run)."""

from __future__ import annotations

import hashlib

from loyalty.domain.clock import new_id, now_iso
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


def json_import_id(principal: Principal, idempotency_key: str | None) -> str:
    """A new import for every post (a nightly sync of the same file runs again); with an
    `Idempotency-Key`, the same import for the same caller and key, so a retry resumes it.
    Keys are the caller's own: another admin's same key is another import."""
    if not idempotency_key:
        return new_id()
    scope = f"{principal.business_id}\x1f{principal.sub}\x1fjson\x1f{idempotency_key}"
    return hashlib.sha256(scope.encode()).hexdigest()[:32]


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
    import_id = json_import_id(principal, idempotency_key)
    rows = [RowIn(i + 1, row) for i, row in enumerate(body.customers)]
    if body.dry_run:
        return _dry_run(principal, import_id, rows)

    Session(principal, import_id)  # refuses a role that may not import before anything is stored
    repo.create_report(new_report(bid, import_id, "json", principal, rows_expected=len(rows)))
    report = repo.get_report(bid, import_id)
    if report is None:  # pragma: no cover - it was just written
        raise NotFound("import not found", {"import_id": import_id})
    # A re-post with the same key resumes an import that was interrupted, and changes nothing
    # on one that completed.
    interrupted = report["state"] == ImportState.FAILED.value and bool(idempotency_key)
    if report["state"] != ImportState.RUNNING.value and not interrupted:
        return to_report(report)
    run = claim(bid, import_id, request_id, remaining_ms, resume_failed=interrupted)
    if run is None:
        raise ImportBusy("this import is still running; poll GET /v1/imports/{id}", {"import_id": import_id})
    session = Session(principal, import_id)
    try:
        # A JSON import is short (<= 1,000 rows): it runs to the end within the request.
        run.process(session, rows[run.rows_done :], lambda _row: {}, may_pause=False)
    except repo.LeaseLost as exc:
        raise ImportBusy("another run took this import over", {"import_id": import_id}) from exc
    except Exception as exc:
        # Never left `running`: the report says how far it got and how to go on.
        resume = (
            "post it again with the same Idempotency-Key to resume" if idempotency_key else "post it again"
        )
        reason = getattr(exc, "message", None) or "an internal error"
        try:
            run.finish(ImportState.FAILED, f"interrupted after row {run.rows_done} ({reason}); {resume}")
        except Exception:  # the table is what failed: free the lease so a retry can resume
            repo.release(bid, import_id, run.owner)
        raise
    return run.finish(ImportState.COMPLETED, "resumed after an interruption" if interrupted else None)


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
