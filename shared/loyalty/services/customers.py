"""Customer use cases: create, read, search, edit, history (docs/design.md#http-api)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from loyalty.domain import audit, points, ranked_statuses, search
from loyalty.domain.clock import new_id, now_iso
from loyalty.domain.errors import BadRequest, Conflict, NotFound, ValidationFailed, VersionConflict
from loyalty.domain.lifecycle import AuditKind, LifecycleEvent, ProgramStatus, apply, eligibility
from loyalty.domain.normalize import normalize_email, normalize_phone
from loyalty.domain.principal import BACK_OFFICE, Principal, Role
from loyalty.domain.records import CatalogRecord, ProfileRecord, updated, with_sources
from loyalty.observability import CUSTOMERS_CREATED, count
from loyalty.repository import customers as repo
from loyalty.repository import keys
from loyalty.repository import tiers as tiers_repo
from loyalty.repository.program_status import resolve_deferred
from loyalty.repository.ranked_statuses import catalog_of, get_catalog
from loyalty.schemas.common import Page
from loyalty.schemas.customers import AuditEvent, CardRef, Customer, CustomerCreate, CustomerPatch, StatusRef
from loyalty.services.ranked_statuses.rules import apply_rules
from loyalty.services.tiers.customer import tier_view

MAX_PAGE = 100


def to_customer(
    profile: ProfileRecord, principal: Principal | None, catalog: CatalogRecord | None = None
) -> Customer:
    """The API view of a stored profile; statuses resolved against the catalog by rank."""
    assigned = profile.get("statuses") or {}
    if assigned and catalog is None:
        catalog = get_catalog(profile["business_id"])
    customer_view = principal is not None and principal.role is Role.CUSTOMER
    definitions = catalog["definitions"] if catalog else {}
    refs = ranked_statuses.ranked(assigned, definitions, customer_facing_only=customer_view)
    data: dict[str, Any] = {k: v for k, v in profile.items() if k in Customer.model_fields}
    data["statuses"] = [StatusRef.model_validate(r) for r in refs]
    data["best_status"] = ranked_statuses.best(refs)
    data["cards"] = [CardRef(number=c["number"], state=c["state"]) for c in profile.get("cards") or []]
    return Customer.model_validate(data)


def _page_limit(limit: int | None) -> int:
    return max(1, min(limit or 50, MAX_PAGE))


def new_profile(business_id: str, fields: Mapping[str, Any], status: ProgramStatus) -> ProfileRecord:
    profile = {
        "business_id": business_id,
        "customer_id": new_id(),
        "program_status": status.value,
        "attributes": {},
        "marketing_consent": False,
        "statuses": {},
        "cards": [],
        "invitation_count": 0,
        **{k: v for k, v in fields.items() if v is not None},
    }
    return cast(ProfileRecord, profile)


def create_customer(principal: Principal, body: CustomerCreate) -> Customer:
    principal.require(BACK_OFFICE)
    status = apply(LifecycleEvent.IMPORT, None, principal.actor)
    created = new_profile(principal.business_id, body.model_dump(exclude_none=True), status)
    profile = with_sources(created, None, "staff")
    stored = repo.commit(
        repo.Write(
            after=profile,
            entry=repo.AuditEntry(AuditKind.IMPORT, principal.as_actor_record(), None, status.value),
            check_suppression=True,
        )
    )
    count(CUSTOMERS_CREATED, 1, "staff")
    return to_customer(stored, principal)


def visible_profile(principal: Principal, customer_id: str, consistent: bool = False) -> ProfileRecord:
    principal.require_self_or(customer_id, BACK_OFFICE)
    profile = repo.get_profile(principal.business_id, customer_id, consistent=consistent)
    if profile is None:
        raise NotFound("customer not found", {"customer_id": customer_id})
    return profile


def get_customer(principal: Principal, customer_id: str) -> Customer:
    """The profile with its available points and its tier: one BatchGetItem."""
    principal.require_self_or(customer_id, BACK_OFFICE)
    bid = principal.business_id
    found = repo.get_profile_view(bid, customer_id)
    stored = found.get(keys.PROFILE_SK)
    if stored is None:
        raise NotFound("customer not found", {"customer_id": customer_id})
    catalog = catalog_of(found.get(keys.STATUS_CATALOG_SK))
    customer = to_customer(repo.strip_keys(stored), principal, catalog)
    wallet = found.get(keys.WALLET_SK)
    held = points.Balance.of(cast(points.Wallet, wallet), now_iso()).available if wallet else 0
    tier = None
    if catalog.get("tiers"):
        record = found.get(keys.TIER_SK)
        time_zone = str((found.get(keys.POINTS_SETTINGS_SK) or {}).get("time_zone") or "UTC")
        tier = tier_view(
            customer_id,
            tiers_repo.or_empty(tiers_repo.record_of(record) if record else None, bid, customer_id),
            catalog,
            time_zone,
            principal,
        )
    return customer.model_copy(update={"balance": held, "tier": tier})


# Name searches read the index page by page until the page is full; bounded so that a
# selective filter (q with status) answers a short page with a cursor rather than read on.
MAX_SEARCH_READS = 3


def search_customers(
    principal: Principal,
    *,
    status: ProgramStatus | None = None,
    q: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    status_code: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Customer]:
    """Search by name words (optionally within a program status), by exact e-mail or phone,
    or list by program status or by ranked status (docs/design.md#search)."""
    principal.require(BACK_OFFICE)
    bid = principal.business_id
    given = {"q": q, "email": email, "phone": phone, "status_code": status_code}
    chosen = [name for name, value in given.items() if value is not None]
    if status is not None and q is None:
        chosen.append("status")
    if len(chosen) > 1:
        raise BadRequest(f"use one filter at a time, got {', '.join(chosen)}", {"fields": chosen})
    if not chosen:
        # A business may hold millions: listing them all is no page staff can use.
        message = "name what to find: q, email, phone, status or status_code"
        raise ValidationFailed(message, [{"field": "q", "message": message}])
    size = _page_limit(limit)
    if email is not None or phone is not None:
        kind = "email" if email is not None else "phone"
        if phone is not None and phone.startswith(" "):
            phone = "+" + phone[1:]  # a "+" not escaped in a query string arrives as a space
        try:
            value = normalize_email(email) if email is not None else normalize_phone(phone or "")
        except ValueError as exc:
            raise BadRequest(str(exc), {"field": kind}) from exc
        cid = repo.find_by_identifier(bid, kind, value)
        profile = repo.get_profile(bid, cid) if cid else None
        return Page[Customer](items=[to_customer(profile, principal)] if profile else [], next_cursor=None)
    if status_code:
        if status_code not in get_catalog(bid)["definitions"]:
            # An unknown code is refused, never answered with an empty list (docs/design.md#ranked-statuses).
            raise NotFound(f"status {status_code} is not defined", {"field": "status_code"})
        holders = repo.list_status_holders(bid, status_code, size, cursor)
        profiles, catalog = repo.get_profiles_and_catalog(bid, [i["customer_id"] for i in holders.items])
        ordered = [profiles[i["customer_id"]] for i in holders.items if i["customer_id"] in profiles]
        return _page(ordered, holders.next_cursor, principal, catalog_of(catalog))
    if q is not None:
        return _search_names(principal, q, status, size, cursor)
    assert status is not None
    page = repo.list_by_program_status(bid, status.value, size, cursor)
    return _page(page.items, page.next_cursor, principal)


def _search_names(
    principal: Principal, q: str, status: ProgramStatus | None, size: int, cursor: str | None
) -> Page[Customer]:
    """Entries of the anchor word's index partition that answer the query, then their profiles
    and the status catalog in one BatchGetItem: two requests for a page of `q` alone."""
    bid = principal.business_id
    words = search.query_words(q)
    anchor = search.anchor_of(words)
    if anchor is None:
        message = f"q needs a word of at least {search.PREFIX_LETTERS} letters"
        raise ValidationFailed(message, [{"field": "q", "message": message}])
    # The cursor belongs to this search: its words and its status filter.
    list_id = f"B#{bid}#NAME#{' '.join(words)}#{status.value if status else ''}"
    found: list[ProfileRecord] = []
    catalog: dict[str, Any] | None = None
    # One word alone keeps nearly every entry it reads (it drops only a customer's second word
    # with the same start): a short page then beats a second round of requests.
    reads = MAX_SEARCH_READS if status is not None or len(words) > 1 else 1
    for _ in range(reads):
        page = repo.search_name_index(bid, anchor, size - len(found), cursor, list_id)
        cursor = page.next_cursor
        entries = [e for e in page.items if search.answers(e["word"], e["words"], words)]
        if entries:
            profiles, catalog = repo.get_profiles_and_catalog(bid, [e["customer_id"] for e in entries])
            for entry in entries:
                profile = profiles.get(entry["customer_id"])
                # The index is read eventually consistently: the profile has the last word.
                if profile is None or not search.answers(
                    entry["word"], repo.searchable_words(profile), words
                ):
                    continue
                if status is None or profile["program_status"] == status.value:
                    found.append(profile)
        if len(found) >= size or not cursor:
            break
    return _page(found, cursor, principal, catalog_of(catalog) if catalog is not None else None)


def _page(
    profiles: list[ProfileRecord],
    next_cursor: str | None,
    principal: Principal,
    catalog: CatalogRecord | None = None,
) -> Page[Customer]:
    if catalog is None and any(p.get("statuses") for p in profiles):
        catalog = get_catalog(principal.business_id)
    items = [to_customer(p, principal, catalog) for p in profiles]
    return Page[Customer](items=items, next_cursor=next_cursor)


def apply_patch(profile: ProfileRecord, body: CustomerPatch) -> tuple[ProfileRecord, list[str]]:
    """New profile fields from a patch; returns (after, names of changed fields)."""
    after: dict[str, Any] = dict(profile)
    changed: list[str] = []
    for name in body.model_fields_set - {"expected_version", "attributes"}:
        value = getattr(body, name)
        if name == "marketing_consent" and value is None:
            value = False
        if after.get(name) != value:
            after[name] = value
            changed.append(name)
    if "attributes" in body.model_fields_set:
        attributes = dict(profile.get("attributes") or {})
        for key, value in (body.attributes or {}).items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if attributes != (profile.get("attributes") or {}):
            after["attributes"] = attributes
            changed.append("attributes")
    return updated(profile, after), sorted(changed)


def patch_customer(principal: Principal, customer_id: str, body: CustomerPatch) -> Customer:
    principal.require(BACK_OFFICE)
    attempts = 1 if body.expected_version else 3
    for attempt in range(attempts):
        profile = visible_profile(principal, customer_id, consistent=True)
        if body.expected_version and profile["version"] != body.expected_version:
            raise VersionConflict(
                "the customer changed since it was read; reload and retry",
                {"customer_id": customer_id, "current_version": profile["version"]},
            )
        if not eligibility(profile["program_status"]).editable:
            raise Conflict(
                f"a {profile['program_status']} customer cannot be edited",
                {"program_status": profile["program_status"]},
            )
        after, changed = apply_patch(profile, body)
        if not changed:
            return to_customer(profile, principal)
        # Status rules read attributes and fields: re-evaluate them in the same transaction.
        catalog = get_catalog(principal.business_id)
        rules, update = apply_rules(after, catalog["definitions"])
        details: dict[str, Any] = {"fields": changed}
        if rules:
            details.update(statuses_added=rules.added, statuses_removed=rules.removed)
        entry = repo.AuditEntry(
            AuditKind.UPDATE,
            principal.as_actor_record(),
            profile["program_status"],
            profile["program_status"],
            details=details,
        )
        try:
            after = with_sources(update.after, profile, "staff")
            write = repo.Write(after=after, before=profile, entry=entry, extra=update.extra)
            stored = repo.commit(write)
        except VersionConflict:
            if attempt + 1 >= attempts:
                raise
            continue
        return to_customer(stored, principal, catalog)
    raise AssertionError("unreachable")  # pragma: no cover


def customer_history(
    principal: Principal, customer_id: str, limit: int | None, cursor: str | None
) -> Page[AuditEvent]:
    visible_profile(principal, customer_id)
    page = repo.history(principal.business_id, customer_id, _page_limit(limit), cursor)
    # Status changes written without a read name the version they follow, not its status.
    resolve_deferred(principal.business_id, customer_id, page.items)
    items: list[dict[str, Any]] = [dict(repo.strip_keys(i)) for i in page.items]
    if principal.role is Role.CUSTOMER:
        definitions = get_catalog(principal.business_id)["definitions"]
        facing = {code for code, d in definitions.items() if d.get("customer_facing")}
        items = [shown for i in items if (shown := audit.customer_view(i, facing)) is not None]
    events = [AuditEvent.model_validate(i) for i in items]
    return Page[AuditEvent](items=events, next_cursor=page.next_cursor)
