"""CSV uploads: a presigned URL, then the S3 event (or a continuation message) runs the file
from its checkpoint, stopping and re-queueing itself when the Lambda run is short of time."""

from __future__ import annotations

import re
from typing import Any

from loyalty.adapters import queues, storage
from loyalty.domain.clock import new_id
from loyalty.domain.csv_rows import CsvFileError, Header, iter_rows, read_header
from loyalty.domain.principal import ADMINS, Principal, Role
from loyalty.observability import logger
from loyalty.repository import imports as repo
from loyalty.schemas.imports import (
    ImportContinuation,
    ImportReport,
    ImportState,
    RowError,
    UploadRequest,
    UploadTicket,
)
from loyalty.services.imports.runs import (
    ImportBusy,
    ImportRun,
    RemainingMs,
    claim,
    new_report,
    to_report,
)
from loyalty.services.imports.session import RowIn, Session

MAX_FILE_BYTES = 2 * 1024**3
UPLOAD_KEY = re.compile(r"^uploads/(?P<business>[^/]+)/(?P<import_id>[0-9a-f]{32})\.csv$")


def upload_key(business_id: str, import_id: str) -> str:
    return f"uploads/{business_id}/{import_id}.csv"


def start_upload(principal: Principal, body: UploadRequest | None) -> UploadTicket:
    principal.require(ADMINS)
    Session(principal, "")  # the role must be allowed to import
    bid = principal.business_id
    import_id = new_id()
    key = upload_key(bid, import_id)
    report = new_report(
        bid,
        import_id,
        "csv",
        principal,
        state=ImportState.PENDING.value,
        object_key=key,
        filename=body.filename if body else None,
    )
    repo.create_report(report)
    return UploadTicket(
        import_id=import_id,
        upload_url=storage.upload_url(key),
        expires_in=storage.UPLOAD_URL_SECONDS,
        max_bytes=MAX_FILE_BYTES,
        report=to_report(report),
    )


def parse_upload_key(key: str) -> tuple[str, str] | None:
    found = UPLOAD_KEY.match(key)
    return (found["business"], found["import_id"]) if found else None


def process_upload(key: str, *, remaining_ms: RemainingMs, request_id: str = "") -> ImportReport | None:
    """An upload arrived (S3 event, possibly delivered twice): start or resume its import."""
    parsed = parse_upload_key(key)
    if parsed is None:
        logger.warning("ignoring an object outside uploads/<business>/<id>.csv")
        return None
    try:
        return resume(
            ImportContinuation(business_id=parsed[0], import_id=parsed[1]), remaining_ms, request_id
        )
    except ImportBusy:
        return None  # another run holds it and will continue it (or its queue message will)


def resume(job: ImportContinuation, remaining_ms: RemainingMs, request_id: str = "") -> ImportReport | None:
    """Run a CSV import from its checkpoint; raises ImportBusy while another run holds it."""
    report = repo.get_report(job.business_id, job.import_id)
    if report is None or report.get("source") != "csv":
        logger.warning("no CSV import with this id", extra={"import_id": job.import_id})
        return None
    if report["state"] in (ImportState.COMPLETED.value, ImportState.FAILED.value):
        return to_report(report)
    run = claim(job.business_id, job.import_id, request_id, remaining_ms)
    if run is None:
        latest = repo.get_report(job.business_id, job.import_id)
        if latest and latest["state"] in (ImportState.COMPLETED.value, ImportState.FAILED.value):
            return to_report(latest)
        raise ImportBusy("another run holds this import", {"import_id": job.import_id})
    try:
        return _run_csv(run)
    except repo.LeaseLost:
        logger.warning("lease lost; the other run continues", extra={"import_id": job.import_id})
        return None
    except Exception:
        # The checkpoint is safe; free the lease so the retry (Lambda or queue) resumes at once.
        repo.release(run.bid, run.import_id, run.owner)
        raise


def _run_csv(run: ImportRun) -> ImportReport:
    """Run the file from its checkpoint; once the import has ended, delete the upload (its
    personal data then lives in the table only, where exclusion can erase it)."""
    result = _run_file(run)
    if result.state in (ImportState.COMPLETED, ImportState.FAILED):
        try:
            storage.delete_object(str(run.report["object_key"]))
        except Exception:  # the bucket's 7-day lifecycle rule removes it anyway
            logger.exception("could not delete an imported file", extra={"import_id": run.import_id})
    return result


def _run_file(run: ImportRun) -> ImportReport:
    report = run.report
    actor = report.get("actor") or {}
    principal = Principal(sub=str(actor.get("sub", "")), business_id=run.bid, role=_role(actor))
    key = str(report["object_key"])
    if "header" not in report:
        failure = _open_file(run, key)
        if failure:
            return run.finish(ImportState.FAILED, failure)
    header = Header.from_dict(report["header"])
    session = Session(principal, run.import_id)
    body = storage.open_object(key, int(report["offset"]))
    try:
        rows = (
            RowIn(r.row, r.fields if not r.error else None, _csv_error(r.row, r.error), r.end_offset)
            for r in iter_rows(body, header, int(report["offset"]), run.rows_done + 1)
        )
        finished = run.process(session, rows, lambda last: {"offset": last.end_offset})
    except CsvFileError as exc:
        return run.finish(ImportState.FAILED, str(exc))
    finally:
        body.close()
    if not finished:
        run.checkpoint([], release=True)
        queues.continue_import(ImportContinuation(business_id=run.bid, import_id=run.import_id).model_dump())
        return to_report(run.report)
    if run.rows_done == 0:
        return run.finish(ImportState.FAILED, "the file has a header but no data rows")
    return run.finish(ImportState.COMPLETED)


def _csv_error(row: int, message: str | None) -> RowError | None:
    return RowError(row=row, field="row", message=message) if message else None


def _role(actor: dict[str, Any]) -> Role:
    return Role(str(actor.get("role", Role.SERVICE.value)))


def _open_file(run: ImportRun, key: str) -> str | None:
    """First run of an upload: check size and header; returns why the file is refused, if so."""
    size = storage.object_size(key)
    if size is None:
        return "the upload was not found"
    if size == 0:
        return "the file is empty"
    if size > MAX_FILE_BYTES:
        return f"the file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes (2 GiB)"
    body = storage.open_object(key)
    try:
        header, offset = read_header(body)
    except CsvFileError as exc:
        return str(exc)
    finally:
        body.close()
    run.checkpoint(
        [],
        {"header": header.to_dict(), "offset": offset, "size_bytes": size, "ignored_columns": header.ignored},
        rows_done=0,
    )
    return None
