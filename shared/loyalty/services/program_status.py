"""Program-status use cases: staff change, opt-out, exclusion with erasure
(docs/design.md#program-status-lifecycle).

Concurrency: every change is conditioned on the version it applies to. With
`expected_version` the change needs no read (one request): the condition names every
status the actor may reach the target from, and where those statuses lead there by
different events (pending: invite from imported, re-invite from inactive) the event is
left to be resolved from the status at that version (repository.program_status). Without
it the status is read and the change is conditioned on that read, and a failed condition
hands back the stored profile, so the rule is re-checked against it and retried a bounded
number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loyalty.domain import erasure, lifecycle
from loyalty.domain.clock import now_iso
from loyalty.domain.errors import Conflict, IllegalTransition, NotFound, VersionConflict
from loyalty.domain.lifecycle import Actor, AuditKind, LifecycleEvent, ProgramStatus
from loyalty.domain.principal import BACK_OFFICE, STAFF_AND_ADMIN, Principal
from loyalty.domain.records import ProfileRecord
from loyalty.repository import customers as customers_repo
from loyalty.repository import idempotency as idempotency_repo
from loyalty.repository import keys
from loyalty.repository import points as points_repo
from loyalty.repository import program_status as repo
from loyalty.repository.base import Transaction
from loyalty.schemas.customers import Customer
from loyalty.schemas.program_status import (
    ExclusionRequest,
    OptOutRequest,
    ProgramStatusChange,
    StatusChangeResult,
)
from loyalty.services.customers import to_customer
from loyalty.services.points import transfers

MAX_ATTEMPTS = 5
EXCLUSION_ROUTE = "POST /v1/customers/{customer_id}/exclusion"
# A staff edit never sends a reminder (the invitation function does) and never excludes
# (exclusion erases data and has its own route).
STAFF_EDIT_EXCLUDES = frozenset({LifecycleEvent.REMIND, LifecycleEvent.EXCLUDE})
OPT_OUT_EXCLUDES = frozenset(LifecycleEvent) - {LifecycleEvent.DISCONNECT}


def planned_events(
    target: ProgramStatus, actor: Actor, excluded: frozenset[LifecycleEvent]
) -> dict[str, str]:
    """Status -> event for every existing status `actor` may move to `target` from.

    Table order decides a status reached by two events, as lifecycle.event_for_target does.
    """
    plan: dict[str, str] = {}
    for t in lifecycle.TRANSITIONS:
        if t.target == target and actor in t.actors and t.event not in excluded:
            for source in t.sources:
                if source is not None:  # `None` (no customer yet) is never a profile's status
                    plan.setdefault(source.value, t.event.value)
    return plan


def _change(
    principal: Principal,
    customer_id: str,
    target: ProgramStatus,
    reason: str | None,
    expected_version: int | None,
    excluded: frozenset[LifecycleEvent],
) -> StatusChangeResult:
    bid, actor = principal.business_id, principal.actor
    plans = planned_events(target, actor, excluded)
    state: ProfileRecord | None = None
    for attempt in range(MAX_ATTEMPTS):
        if attempt == 0 and expected_version is not None and plans:
            # No read: the condition names every status the planned events start from.
            version, from_status, event_by_from = expected_version, None, plans
        else:
            if state is None:
                state = customers_repo.require_profile(bid, customer_id, consistent=True)
            if expected_version is not None and state["version"] != expected_version:
                raise VersionConflict(
                    "the customer changed since it was read; reload and retry",
                    {"customer_id": customer_id, "current_version": state["version"]},
                )
            current = ProgramStatus(state["program_status"])
            event = lifecycle.event_for_target(current, target, actor, excluded)
            version, from_status = state["version"], current.value
            event_by_from = {current.value: event.value}
        at = now_iso()
        change = repo.StatusChange(
            business_id=bid,
            customer_id=customer_id,
            version=version,
            event_by_from=event_by_from,
            target=target.value,
            actor=principal.as_actor_record(),
            reason=reason,
            from_status=from_status,
            at=at,
        )
        try:
            repo.change_status(change)
        except repo.ProfileMismatch as mismatch:
            if mismatch.current is None:
                raise NotFound("customer not found", {"customer_id": customer_id}) from mismatch
            state = mismatch.current  # the stored profile: re-check the rule against it
            continue
        return StatusChangeResult(
            customer_id=customer_id,
            event=change.event,
            possible_events=None if change.event else dict(event_by_from),
            program_status=target,
            version=version + 1,
            updated_at=at,
        )
    raise VersionConflict(
        "the customer kept changing while this change was applied; reload and retry",
        {"customer_id": customer_id, "current_version": (state or {}).get("version")},
    )


def change_program_status(
    principal: Principal, customer_id: str, body: ProgramStatusChange
) -> StatusChangeResult:
    """A staff edit names only the target; the transition table decides the event."""
    principal.require(BACK_OFFICE)
    if body.status is ProgramStatus.EXCLUDED:
        customers_repo.require_profile(principal.business_id, customer_id, consistent=False)
        raise IllegalTransition(
            f"exclusion erases personal data and has its own route: {EXCLUSION_ROUTE}",
            {"to": ProgramStatus.EXCLUDED.value, "route": EXCLUSION_ROUTE},
        )
    return _change(
        principal, customer_id, body.status, body.reason, body.expected_version, STAFF_EDIT_EXCLUDES
    )


def opt_out(principal: Principal, customer_id: str, body: OptOutRequest | None) -> StatusChangeResult:
    """The customer (or staff for them) disconnects: inactive."""
    principal.require_self_or(customer_id, STAFF_AND_ADMIN)
    body = body or OptOutRequest()
    return _change(
        principal,
        customer_id,
        ProgramStatus.INACTIVE,
        body.reason,
        body.expected_version,
        OPT_OUT_EXCLUDES,
    )


def _forfeit(items: list[dict[str, Any]], at: str, principal: Principal) -> Callable[[Transaction], None]:
    """The points balance is forfeited, and the tier record (with its place in the tier
    indexes) deleted, in the exclusion's own transaction."""
    stored = next((i for i in items if i["SK"] == keys.WALLET_SK), None)
    wallet = points_repo.wallet_of(stored) if stored else None
    tier = next((i for i in items if i["SK"] == keys.TIER_SK), None)

    def stage(tx: Transaction) -> None:
        transfers.stage_forfeit(tx, wallet, at, principal.as_system())
        if tier is not None:
            tx.delete({"PK": tier["PK"], "SK": tier["SK"]})

    return stage


def _points_records(business_id: str, items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The purchase and redemption records the customer's ledger names."""
    kinds = {"earn": "purchase", "redeem": "redemption"}
    return [
        keys.points_op_key(business_id, kinds[str(i["type"])], str(i["external_id"]))
        for i in items
        if i["SK"].startswith(keys.LEDGER_SK_PREFIX) and i.get("type") in kinds and i.get("external_id")
    ]


def exclude_customer(principal: Principal, customer_id: str, body: ExclusionRequest | None) -> Customer:
    """Exclude at the customer's request: erase personal data, delete cards, keep hashes."""
    principal.require_self_or(customer_id, STAFF_AND_ADMIN)
    body = body or ExclusionRequest()
    bid = principal.business_id
    for _ in range(MAX_ATTEMPTS):
        items = repo.read_customer_partition(bid, customer_id)
        profile = next((i for i in items if i["SK"] == keys.PROFILE_SK), None)
        if profile is None:
            raise NotFound("customer not found", {"customer_id": customer_id})
        if body.expected_version is not None and profile["version"] != body.expected_version:
            raise VersionConflict(
                "the customer changed since it was read; reload and retry",
                {"customer_id": customer_id, "current_version": profile["version"]},
            )
        current = ProgramStatus(profile["program_status"])
        target = lifecycle.apply(LifecycleEvent.EXCLUDE, current, principal.actor)
        personal = erasure.personal_values(profile)
        at = now_iso()
        details: dict[str, Any] = {
            "erased_fields": erasure.erased_fields(customers_repo.strip_keys(profile)),
            "suppressed": [k for k in erasure.SUPPRESSED_IDENTIFIERS if profile.get(k)],
            "cards_deleted": sum(1 for c in profile.get("cards") or [] if c.get("state") != "deleted"),
            "statuses_removed": sorted((profile.get("statuses") or {}).keys()),
        }
        exclusion = repo.Exclusion(
            profile=customers_repo.strip_keys(profile),
            after=erasure.erased_profile(customers_repo.strip_keys(profile), target.value),
            entry=customers_repo.AuditEntry(
                AuditKind.EXCLUDE,
                principal.as_actor_record(),
                current.value,
                target.value,
                erasure.scrub_text(body.reason, personal),
                details,
            ),
            assignment_skus=[i["SK"] for i in items if i["SK"].startswith(keys.status_assignment_sk(""))],
            at=at,
            extra=_forfeit(items, at, principal),
        )
        # Before the commit: any event written after this scrub bumps the version, so the
        # commit fails and the loop scrubs again; a crash after the commit leaves nothing behind.
        repo.scrub_history_reasons(items)
        try:
            stored = repo.commit_exclusion(exclusion)
        except VersionConflict:
            if body.expected_version is not None:
                raise
            continue
        # Stored Idempotency-Key answers may quote the person for up to 24 h: purge them too.
        identifiers = [str(profile[k]) for k in erasure.ERASED_IDENTIFIERS if profile.get(k)]
        idempotency_repo.purge_for_customer(bid, customer_id, identifiers)
        # Amounts stay (they are not personal data); a purchase's or reward's free text goes.
        points_repo.purge_free_text(bid, customer_id, _points_records(bid, items))
        return to_customer(stored, principal)
    raise Conflict("the customer kept changing during exclusion; retry", {"customer_id": customer_id})
