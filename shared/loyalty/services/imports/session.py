"""Import rows in chunks: validate, dedupe against the file and the table, plan and write
the customers (one BatchGetItem pass per chunk, creates packed into transactions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.lifecycle import AuditKind, LifecycleEvent, ProgramStatus, apply, eligibility
from loyalty.domain.principal import Principal
from loyalty.domain.records import PERSON_IDENTIFIERS, ProfileRecord, updated, with_sources
from loyalty.repository import customers as customer_repo
from loyalty.repository import imports as repo
from loyalty.schemas.customers import CustomerCreate
from loyalty.schemas.imports import (
    RowError,
)
from loyalty.services.customers import new_profile

CHUNK_ROWS = 250


@dataclass
class RowIn:
    row: int
    data: dict[str, Any] | None
    error: RowError | None = None
    end_offset: int = 0


@dataclass
class RowOutcome:
    row: int
    outcome: str
    customer_id: str | None = None
    error: RowError | None = None


@dataclass
class _Touched:
    """A customer changed by this chunk: one write, however many rows touched it."""

    before: ProfileRecord | None
    after: ProfileRecord
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


def _merge(before: ProfileRecord, fields: dict[str, Any]) -> tuple[ProfileRecord, set[str]]:
    """The row's non-empty fields set on `before`, attributes merged key by key; and the
    names that changed."""
    changes: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "attributes":
            merged = {**(before.get("attributes") or {}), **(value or {})}
            if merged != (before.get("attributes") or {}):
                changes[name] = merged
        elif before.get(name) != value:
            changes[name] = value
    return updated(before, changes), set(changes)


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
        # Checked once: the importer's role may import (docs/design.md#program-status-lifecycle).
        self.status = apply(LifecycleEvent.IMPORT, None, principal.actor)
        self.known: dict[repo.Identifier, str] = {}
        self.touched: dict[str, _Touched] = {}

    def process(self, rows: list[RowIn], retry: bool = True) -> list[RowOutcome]:
        outcomes: dict[int, RowOutcome] = {}
        valid: list[tuple[int, dict[str, Any]]] = []
        for r in rows:
            if r.error or r.data is None:
                error = r.error or RowError(row=r.row, field="row", message="the row is empty")
                outcomes[r.row] = RowOutcome(r.row, "failed", error=error)
                continue
            try:
                fields = CustomerCreate.model_validate(r.data).model_dump(exclude_none=True)
            except ValidationError as exc:
                outcomes[r.row] = RowOutcome(r.row, "failed", error=_row_error(r.row, exc))
                continue
            valid.append((r.row, fields))

        wanted = {(k, f[k]) for _, f in valid for k in PERSON_IDENTIFIERS if f.get(k)}
        ids = repo.read_identifiers(self.business_id, wanted - set(self.known))
        plans = self._plan(valid, ids, outcomes)
        matched = {p.customer_id for p in plans if not p.new and p.customer_id not in self.touched}
        loaded = customer_repo.get_profiles(self.business_id, sorted(matched)) if matched else {}
        self._apply(plans, loaded, outcomes)
        if not self.dry_run:
            self._write(rows, outcomes, retry)
        return [outcomes[r.row] for r in rows]

    def _plan(
        self,
        valid: list[tuple[int, dict[str, Any]]],
        ids: repo.IdentifierState,
        outcomes: dict[int, RowOutcome],
    ) -> list[_Plan]:
        plans: list[_Plan] = []
        for row, fields in valid:
            pairs = [(k, fields[k]) for k in PERSON_IDENTIFIERS if fields.get(k)]
            if any(p in ids.suppressed for p in pairs):
                outcomes[row] = RowOutcome(row, "suppressed")
                continue
            declared = next((p for p in pairs if p not in self.known and ids.sources.get(p) == "self"), None)
            if declared is not None:
                # A customer typed this identifier without proof: matching it would copy this
                # row's personal data into their profile (docs/design.md#trust-and-identity).
                outcomes[row] = RowOutcome(
                    row,
                    "failed",
                    error=RowError(
                        row=row,
                        field=declared[0],
                        message=f"{declared[0]} was declared by a customer without proof; "
                        "resolve the conflict by hand (staff can confirm it)",
                    ),
                )
                continue
            owners = [(p, self.known.get(p) or ids.owners.get(p)) for p in pairs]
            matched = [(p, cid) for p, cid in owners if cid]
            distinct = list(dict.fromkeys(cid for _, cid in matched))
            if len(distinct) > 1:
                first_kind = matched[0][0][0]
                clash = next(p for p, cid in matched if cid != distinct[0])[0]
                outcomes[row] = RowOutcome(
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
        self, plans: list[_Plan], loaded: dict[str, ProfileRecord], outcomes: dict[int, RowOutcome]
    ) -> None:
        for plan in plans:
            row, cid = plan.row, plan.customer_id
            touched = self.touched.get(cid)
            if touched is None and plan.new:
                profile = new_profile(self.business_id, {}, self.status)
                profile["customer_id"] = cid
                after, _ = _merge(profile, plan.fields)
                touched = self.touched[cid] = _Touched(None, after)
                touched.rows.append(row)
                outcomes[row] = RowOutcome(row, "created", cid)
                continue
            if touched is None:
                stored = loaded.get(cid)
                if stored is None:
                    outcomes[row] = RowOutcome(
                        row,
                        "failed",
                        error=RowError(row=row, field="identifiers", message="customer not found"),
                    )
                    continue
                if stored["program_status"] == ProgramStatus.EXCLUDED.value:
                    outcomes[row] = RowOutcome(row, "suppressed")
                    continue
                if not eligibility(stored["program_status"]).editable:
                    outcomes[row] = RowOutcome(
                        row,
                        "failed",
                        error=RowError(
                            row=row,
                            field="identifiers",
                            message=f"the matching customer is {stored['program_status']}; not updatable",
                        ),
                    )
                    continue
                touched = self.touched[cid] = _Touched(stored, stored.copy())
            touched.after, changed = _merge(touched.after, plan.fields)
            touched.changed |= changed
            touched.rows.append(row)
            outcomes[row] = RowOutcome(row, "updated" if changed else "unchanged", cid)

    def _write(self, rows: list[RowIn], outcomes: dict[int, RowOutcome], retry: bool) -> None:
        actor = self.principal.as_actor_record()
        writes: list[customer_repo.Write] = []
        owners: list[_Touched] = []
        for touched in self.touched.values():
            if touched.before is None:
                entry = customer_repo.AuditEntry(
                    AuditKind.IMPORT,
                    actor,
                    None,
                    self.status.value,
                    details={"import_id": self.import_id, "row": touched.rows[0]},
                )
            elif touched.changed:
                status = touched.before["program_status"]
                entry = customer_repo.AuditEntry(
                    AuditKind.UPDATE,
                    actor,
                    status,
                    status,
                    details={"fields": sorted(touched.changed), "import_id": self.import_id},
                )
            else:
                continue
            writes.append(
                customer_repo.Write(
                    after=with_sources(touched.after, touched.before, "import"),
                    before=touched.before,
                    entry=entry,
                    check_suppression=True,
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
                    outcomes[row] = RowOutcome(row, "suppressed")
                elif retry:
                    again.append(row)
                else:
                    field_name = str(getattr(error, "details", {}).get("field") or "row")
                    message = getattr(error, "message", str(error))
                    outcomes[row] = RowOutcome(
                        row, "failed", error=RowError(row=row, field=field_name, message=message)
                    )
        if again:
            # Someone changed the same customers meanwhile: read them again, once.
            retried = self.process([r for r in rows if r.row in set(again)], retry=False)
            outcomes.update({o.row: o for o in retried})


def chunks(rows: Iterable[RowIn], size: int | None = None) -> Iterator[list[RowIn]]:
    """Rows in lists of `size` (CHUNK_ROWS, read at call time so a test can shrink it)."""
    size = size or CHUNK_ROWS
    chunk: list[RowIn] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
