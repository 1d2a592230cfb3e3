"""Bulk imports (JSON rows and CSV uploads): dedupe, merge, suppression, checkpoints.

Rows are processed in chunks. Per chunk: one pass of BatchGetItem for the identifiers'
lookup and suppression items (and the matched profiles), then the new and changed
customers packed into TransactWriteItems of up to 100 items (each customer = profile +
lookups + suppression checks + audit event), then one checkpoint transaction that
advances the report and stores the chunk's row outcomes. A re-run resumes after the last
checkpoint, so rows are applied once; a run that is short of time stops after a chunk and
continues through the import queue.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from loyalty import storage
from loyalty.auth import ADMINS, BACK_OFFICE, Principal, Role
from loyalty.clock import new_id, now, now_iso
from loyalty.csv_rows import CsvFileError, Header, iter_rows, read_header
from loyalty.errors import Conflict, NotFound
from loyalty.import_models import (
    ImportContinuation,
    ImportReport,
    ImportRequest,
    ImportState,
    RowError,
    UploadRequest,
    UploadTicket,
)
from loyalty.lifecycle import Event, ProgramStatus, apply
from loyalty.models import CustomerCreate
from loyalty.observability import logger
from loyalty.repository import customers as customer_repo
from loyalty.repository import imports as repo
from loyalty.services.customers import EDITABLE, new_profile

CHUNK_ROWS = 250
MAX_STORED_ERRORS = 1000
MAX_FILE_BYTES = 2 * 1024**3
# Stop taking new chunks when less than this is left of the Lambda run.
TIME_RESERVE_MS = 60_000
LEASE_MARGIN_SECONDS = 30
IDENTIFIERS = ("email", "phone", "external_id")
UPLOAD_KEY = re.compile(r"^uploads/(?P<business>[^/]+)/(?P<import_id>[0-9a-f]{32})\.csv$")

RemainingMs = Callable[[], int]

_OUTCOME_CODES = {"created": "c", "updated": "u", "unchanged": "n", "suppressed": "s", "failed": "f"}


class ImportBusy(Conflict):
    code = "import_in_progress"


# --- rows and their outcomes ------------------------------------------------------------


@dataclass
class RowIn:
    row: int
    data: dict[str, Any] | None
    error: RowError | None = None
    end_offset: int = 0


@dataclass
class Outcome:
    row: int
    outcome: str
    customer_id: str | None = None
    error: RowError | None = None


@dataclass
class _Touched:
    """A customer changed by this chunk: one write, however many rows touched it."""

    before: dict[str, Any] | None
    after: dict[str, Any]
    rows: list[int] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    row: int
    customer_id: str
    fields: dict[str, Any]
    new: bool


def _row_error(row: int, exc: ValidationError) -> RowError:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if not isinstance(p, int)]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return RowError(row=row, field=".".join(loc) or "identifiers", message=message)


def _merge(after: dict[str, Any], fields: dict[str, Any]) -> set[str]:
    """Set the row's non-empty fields on `after`; attributes merge key by key. Returns changed names."""
    changed: set[str] = set()
    for name, value in fields.items():
        if name == "attributes":
            merged = dict(after.get("attributes") or {})
            merged.update(value or {})
            if merged != (after.get("attributes") or {}):
                after["attributes"] = merged
                changed.add(name)
        elif after.get(name) != value:
            after[name] = value
            changed.add(name)
    return changed


class Session:
    """Processes chunks of rows for one import run.

    `known` maps identifiers to the customers this session created or touched, so a
    duplicate later in the same chunk (or, in a dry run, anywhere in the import) merges
    into the same customer instead of creating a second one.
    """

    def __init__(self, principal: Principal, import_id: str, dry_run: bool = False) -> None:
        self.principal = principal
        self.business_id = principal.business_id
        self.import_id = import_id
        self.dry_run = dry_run
        # Checked once: the importer's role may import (DESIGN.md transition table).
        self.status = apply(Event.IMPORT, None, principal.actor)
        self.known: dict[repo.Identifier, str] = {}
        self.touched: dict[str, _Touched] = {}

    def process(self, rows: list[RowIn], retry: bool = True) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        valid: list[tuple[int, dict[str, Any]]] = []
        for r in rows:
            if r.error or r.data is None:
                error = r.error or RowError(row=r.row, field="row", message="the row is empty")
                outcomes[r.row] = Outcome(r.row, "failed", error=error)
                continue
            try:
                fields = CustomerCreate.model_validate(r.data).model_dump(exclude_none=True)
            except ValidationError as exc:
                outcomes[r.row] = Outcome(r.row, "failed", error=_row_error(r.row, exc))
                continue
            valid.append((r.row, fields))

        wanted = {(k, f[k]) for _, f in valid for k in IDENTIFIERS if f.get(k)}
        ids = repo.read_identifiers(self.business_id, wanted - set(self.known))
        plans = self._plan(valid, ids, outcomes)
        loaded = repo.read_profiles(
            self.business_id,
            {p.customer_id for p in plans if not p.new and p.customer_id not in self.touched},
        )
        self._apply(plans, loaded, outcomes)
        if not self.dry_run:
            self._write(rows, outcomes, retry)
        return [outcomes[r.row] for r in rows]

    def _plan(
        self, valid: list[tuple[int, dict[str, Any]]], ids: repo.IdentifierState, outcomes: dict[int, Outcome]
    ) -> list[_Plan]:
        plans: list[_Plan] = []
        for row, fields in valid:
            pairs = [(k, fields[k]) for k in IDENTIFIERS if fields.get(k)]
            if any(p in ids.suppressed for p in pairs):
                outcomes[row] = Outcome(row, "suppressed")
                continue
            owners = [(p, self.known.get(p) or ids.owners.get(p)) for p in pairs]
            matched = [(p, cid) for p, cid in owners if cid]
            distinct = list(dict.fromkeys(cid for _, cid in matched))
            if len(distinct) > 1:
                first_kind = matched[0][0][0]
                clash = next(p for p, cid in matched if cid != distinct[0])[0]
                outcomes[row] = Outcome(
                    row,
                    "failed",
                    error=RowError(
                        row=row,
                        field=clash,
                        message=f"{clash} belongs to a different customer than {first_kind}",
                    ),
                )
                continue
            cid = distinct[0] if distinct else new_id()
            plans.append(_Plan(row, cid, fields, new=not distinct))
            for p in pairs:
                self.known[p] = cid
        return plans

    def _apply(
        self, plans: list[_Plan], loaded: dict[str, dict[str, Any]], outcomes: dict[int, Outcome]
    ) -> None:
        for plan in plans:
            row, cid = plan.row, plan.customer_id
            touched = self.touched.get(cid)
            if touched is None and plan.new:
                profile = new_profile(self.business_id, {}, self.status)
                profile["customer_id"] = cid
                touched = self.touched[cid] = _Touched(None, profile)
                _merge(touched.after, plan.fields)
                touched.rows.append(row)
                outcomes[row] = Outcome(row, "created", cid)
                continue
            if touched is None:
                stored = loaded.get(cid)
                if stored is None:
                    outcomes[row] = Outcome(
                        row,
                        "failed",
                        error=RowError(row=row, field="identifiers", message="customer not found"),
                    )
                    continue
                if stored["program_status"] == ProgramStatus.EXCLUDED.value:
                    outcomes[row] = Outcome(row, "suppressed")
                    continue
                if stored["program_status"] not in EDITABLE:
                    outcomes[row] = Outcome(
                        row,
                        "failed",
                        error=RowError(
                            row=row,
                            field="identifiers",
                            message=f"the matching customer is {stored['program_status']}; not updatable",
                        ),
                    )
                    continue
                touched = self.touched[cid] = _Touched(stored, dict(stored))
            changed = _merge(touched.after, plan.fields)
            touched.changed |= changed
            touched.rows.append(row)
            outcomes[row] = Outcome(row, "updated" if changed else "unchanged", cid)

    def _write(self, rows: list[RowIn], outcomes: dict[int, Outcome], retry: bool) -> None:
        actor = self.principal.as_actor_record()
        writes: list[customer_repo.Write] = []
        owners: list[_Touched] = []
        for touched in self.touched.values():
            if touched.before is None:
                entry = customer_repo.AuditEntry(
                    Event.IMPORT.value,
                    actor,
                    None,
                    self.status.value,
                    details={"import_id": self.import_id, "row": touched.rows[0]},
                )
            elif touched.changed:
                status = touched.before["program_status"]
                entry = customer_repo.AuditEntry(
                    "update",
                    actor,
                    status,
                    status,
                    details={"fields": sorted(touched.changed), "import_id": self.import_id},
                )
            else:
                continue
            writes.append(
                customer_repo.Write(
                    after=touched.after, before=touched.before, entry=entry, check_suppression=True
                )
            )
            owners.append(touched)
        results = repo.commit_writes(writes, now_iso())
        self.known.clear()
        self.touched.clear()
        again: list[int] = []
        for touched, error in zip(owners, results, strict=True):
            if error is None:
                continue
            for row in touched.rows:
                if isinstance(error, customer_repo.Suppressed):
                    outcomes[row] = Outcome(row, "suppressed")
                elif retry:
                    again.append(row)
                else:
                    field_name = str(getattr(error, "details", {}).get("field") or "row")
                    message = getattr(error, "message", str(error))
                    outcomes[row] = Outcome(
                        row, "failed", error=RowError(row=row, field=field_name, message=message)
                    )
        if again:
            # Someone changed the same customers meanwhile: read them again, once.
            retried = self.process([r for r in rows if r.row in set(again)], retry=False)
            outcomes.update({o.row: o for o in retried})


# --- reports --------------------------------------------------------------------------


def to_report(item: dict[str, Any]) -> ImportReport:
    size = item.get("size_bytes")
    progress = None
    if item.get("source") == "csv" and size:
        done = item["state"] in (ImportState.COMPLETED.value, ImportState.FAILED.value)
        progress = 1.0 if done else round(min(1.0, int(item.get("offset") or 0) / int(size)), 4)
    errors = item.get("errors") or []
    data = {**item, "errors": errors, "progress": progress}
    data["errors_truncated"] = int(item.get("error_count") or 0) > len(errors)
    return ImportReport.model_validate({k: v for k, v in data.items() if k in ImportReport.model_fields})


def _counts(outcomes: list[Outcome]) -> dict[str, int]:
    counts = dict.fromkeys(_OUTCOME_CODES, 0)
    for o in outcomes:
        counts[o.outcome] += 1
    return counts


def _outcome_item(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "first_row": outcomes[0].row,
        "last_row": outcomes[-1].row,
        # One letter per row keeps a 250-row chunk in a few kilobytes.
        "outcomes": "".join(_OUTCOME_CODES[o.outcome] for o in outcomes),
        "rows": [o.row for o in outcomes],
        "customer_ids": [o.customer_id or "" for o in outcomes],
        "errors": [o.error.model_dump() for o in outcomes if o.error],
    }


def _new_report(bid: str, import_id: str, source: str, principal: Principal, **extra: Any) -> dict[str, Any]:
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
class _Run:
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
        outcomes: list[Outcome],
        sets: dict[str, Any] | None = None,
        *,
        release: bool = False,
        rows_done: int | None = None,
    ) -> None:
        errors = [o.error.model_dump() for o in outcomes if o.error]
        stored = int(self.report.get("error_count") or 0)
        keep = errors[: max(0, MAX_STORED_ERRORS - stored)]
        counts = _counts(outcomes)
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
        for chunk in _chunks(rows, CHUNK_ROWS):
            outcomes = session.process(chunk)
            self.checkpoint(outcomes, on_chunk(chunk[-1]))
            if may_pause and self.remaining_ms() < TIME_RESERVE_MS:
                return False
        return True


def _chunks(rows: Iterable[RowIn], size: int) -> Iterator[list[RowIn]]:
    chunk: list[RowIn] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _claim(bid: str, import_id: str, request_id: str, remaining_ms: RemainingMs) -> _Run | None:
    owner = f"{request_id}:{uuid.uuid4().hex[:8]}"
    moment = now().timestamp()
    until = moment + remaining_ms() / 1000 + LEASE_MARGIN_SECONDS
    claimed = repo.claim(bid, import_id, owner, until, moment, now_iso())
    return _Run(claimed, owner, remaining_ms) if claimed else None


# --- JSON imports ---------------------------------------------------------------------


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
    repo.create_report(_new_report(bid, import_id, "json", principal, rows_expected=len(rows)))
    report = repo.get_report(bid, import_id)
    if report is None:  # pragma: no cover - it was just written
        raise NotFound("import not found", {"import_id": import_id})
    if report["state"] != ImportState.RUNNING.value:
        return to_report(report)  # a re-post of a finished import changes nothing
    run = _claim(bid, import_id, request_id, remaining_ms)
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
    outcomes: list[Outcome] = []
    for chunk in _chunks(rows, CHUNK_ROWS):
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
        **_counts(outcomes),
    )


# --- CSV uploads ----------------------------------------------------------------------


def upload_key(business_id: str, import_id: str) -> str:
    return f"uploads/{business_id}/{import_id}.csv"


def start_upload(principal: Principal, body: UploadRequest | None) -> UploadTicket:
    principal.require(ADMINS)
    Session(principal, "")  # the role must be allowed to import
    bid = principal.business_id
    import_id = new_id()
    key = upload_key(bid, import_id)
    report = _new_report(
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
    run = _claim(job.business_id, job.import_id, request_id, remaining_ms)
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


def _run_csv(run: _Run) -> ImportReport:
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
        storage.send_continuation(
            ImportContinuation(business_id=run.bid, import_id=run.import_id).model_dump()
        )
        return to_report(run.report)
    if run.rows_done == 0:
        return run.finish(ImportState.FAILED, "the file has a header but no data rows")
    return run.finish(ImportState.COMPLETED)


def _csv_error(row: int, message: str | None) -> RowError | None:
    return RowError(row=row, field="row", message=message) if message else None


def _role(actor: dict[str, Any]) -> Role:
    return Role(str(actor.get("role", Role.SERVICE.value)))


def _open_file(run: _Run, key: str) -> str | None:
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


def get_import(principal: Principal, import_id: str) -> ImportReport:
    principal.require(BACK_OFFICE)
    report = repo.get_report(principal.business_id, import_id, consistent=False)
    if report is None:
        raise NotFound("import not found", {"import_id": import_id})
    return to_report(report)
