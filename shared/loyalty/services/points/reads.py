"""Reading points: the balance (one GetItem), the ledger (newest first), the open lots."""

from __future__ import annotations

from loyalty.domain import points
from loyalty.domain.clock import now_iso
from loyalty.domain.points import Policy
from loyalty.domain.principal import BACK_OFFICE, Principal
from loyalty.repository import points as repo
from loyalty.repository.base import decode_cursor, encode_cursor
from loyalty.schemas.common import Page
from loyalty.schemas.points import BalanceView, LedgerEntry, LotView
from loyalty.services.customers import visible_profile
from loyalty.services.points.commands import balance_view, entry_view

MAX_PAGE = 100


def _limit(limit: int | None) -> int:
    return max(1, min(limit or 50, MAX_PAGE))


def _wallet(principal: Principal, customer_id: str) -> points.Wallet:
    principal.require_self_or(customer_id, BACK_OFFICE)
    wallet = repo.get_wallet(principal.business_id, customer_id)
    if wallet is None:
        visible_profile(principal, customer_id)  # 404 for an unknown customer, zero for a new one
        return points.empty_wallet(principal.business_id, customer_id)
    return wallet


def get_balance(principal: Principal, customer_id: str) -> BalanceView:
    """One GetItem: the balance is computed from the wallet's lots, never kept as a counter;
    expiry dates are the business's local days (its zone travels with the wallet)."""
    wallet = _wallet(principal, customer_id)
    return balance_view(customer_id, wallet, now_iso(), Policy(time_zone=wallet.get("time_zone") or "UTC"))


def get_ledger(
    principal: Principal, customer_id: str, limit: int | None, cursor: str | None
) -> Page[LedgerEntry]:
    principal.require_self_or(customer_id, BACK_OFFICE)
    visible_profile(principal, customer_id)
    page = repo.ledger_page(principal.business_id, customer_id, _limit(limit), cursor)
    return Page[LedgerEntry](items=[entry_view(i) for i in page.items], next_cursor=page.next_cursor)


def get_lots(principal: Principal, customer_id: str, limit: int | None, cursor: str | None) -> Page[LotView]:
    """Open lots, newest first: what is left of each, and until when."""
    wallet = _wallet(principal, customer_id)
    now = now_iso()
    lots = sorted(wallet.get("lots") or [], key=lambda lot: lot["lot_id"], reverse=True)
    scope = f"lots#{principal.business_id}#{customer_id}"
    start = 0
    if cursor:
        start = int(decode_cursor(cursor, scope)["after"]["N"])
    size = _limit(limit)
    shown = lots[start : start + size]
    views = [
        LotView(
            lot_id=lot["lot_id"],
            points=lot["points"],
            remaining=lot["remaining"],
            state="expired"
            if points.is_expired(lot, wallet, now)
            else ("pending" if points.is_pending(lot, now) else "available"),
            earned_at=lot.get("earned_at", ""),
            available_at=lot.get("available_at", ""),
            expires_at=points.lot_expiry(lot, wallet),
        )
        for lot in shown
    ]
    following = start + size
    next_cursor = encode_cursor({"after": {"N": str(following)}}, scope) if following < len(lots) else None
    return Page[LotView](items=views, next_cursor=next_cursor)
