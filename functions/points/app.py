"""Points (docs/design.md#points-ledger): settings, purchases and returns, redemptions (hold,
capture, void, reversal), adjustments, balance, ledger and lots (HTTP); the scheduled points
run (activation, expiry, reminders)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.auth import CurrentPrincipal
from loyalty.api.params import CardNumberParam, Cursor, CustomerId, Limit
from loyalty.api.resolver import create_app
from loyalty.config import PointsSettingsEnv, configure
from loyalty.observability import logger, metrics, tracer
from loyalty.schemas.common import Page
from loyalty.schemas.points import (
    Adjustment,
    BalanceView,
    LedgerEntry,
    LotView,
    PointsResult,
    PointsSettings,
    PointsSettingsView,
    Purchase,
    PurchaseReturn,
    Redemption,
)
from loyalty.services.points import commands, reads, run
from loyalty.services.points import settings as points_settings

configure(PointsSettingsEnv)
router = APIGatewayHttpRouter()
ExternalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:@|-]{1,128}$")]


@router.get("/v1/settings/points")
def get_settings(principal: CurrentPrincipal) -> PointsSettingsView:
    return points_settings.get_settings(principal)


@router.put("/v1/settings/points")
def put_settings(body: PointsSettings, principal: CurrentPrincipal) -> PointsSettingsView:
    return points_settings.put_settings(principal, body)


@router.post("/v1/customers/<customer_id>/purchases")
def earn(customer_id: CustomerId, body: Purchase, principal: CurrentPrincipal) -> tuple[PointsResult, int]:
    result = commands.earn(principal, customer_id, body)
    return result, 200 if result.replayed else 201


@router.post("/v1/cards/<number>/purchases")
def earn_by_card(
    number: CardNumberParam, body: Purchase, principal: CurrentPrincipal
) -> tuple[PointsResult, int]:
    result = commands.earn_by_card(principal, number, body)
    return result, 200 if result.replayed else 201


@router.post("/v1/customers/<customer_id>/purchases/<purchase_id>/returns")
def return_purchase(
    customer_id: CustomerId, purchase_id: ExternalId, body: PurchaseReturn, principal: CurrentPrincipal
) -> tuple[PointsResult, int]:
    result = commands.return_purchase(principal, customer_id, purchase_id, body)
    return result, 200 if result.replayed else 201


@router.post("/v1/customers/<customer_id>/redemptions")
def redeem(
    customer_id: CustomerId, body: Redemption, principal: CurrentPrincipal
) -> tuple[PointsResult, int]:
    result = commands.redeem(principal, customer_id, body)
    return result, 200 if result.replayed else 201


@router.post("/v1/customers/<customer_id>/redemptions/<redemption_id>/capture")
def capture(customer_id: CustomerId, redemption_id: ExternalId, principal: CurrentPrincipal) -> PointsResult:
    return commands.settle_redemption(principal, customer_id, redemption_id, "capture")


@router.post("/v1/customers/<customer_id>/redemptions/<redemption_id>/void")
def void(customer_id: CustomerId, redemption_id: ExternalId, principal: CurrentPrincipal) -> PointsResult:
    return commands.settle_redemption(principal, customer_id, redemption_id, "void")


@router.post("/v1/customers/<customer_id>/redemptions/<redemption_id>/reversal")
def reverse(customer_id: CustomerId, redemption_id: ExternalId, principal: CurrentPrincipal) -> PointsResult:
    return commands.settle_redemption(principal, customer_id, redemption_id, "reversal")


@router.post("/v1/customers/<customer_id>/point-adjustments")
def adjust(
    customer_id: CustomerId, body: Adjustment, principal: CurrentPrincipal
) -> tuple[PointsResult, int]:
    result = commands.adjust(principal, customer_id, body)
    return result, 200 if result.replayed else 201


@router.get("/v1/customers/<customer_id>/balance")
def balance(customer_id: CustomerId, principal: CurrentPrincipal) -> BalanceView:
    return reads.get_balance(principal, customer_id)


@router.get("/v1/customers/<customer_id>/ledger")
def ledger(
    customer_id: CustomerId, principal: CurrentPrincipal, limit: Limit = None, cursor: Cursor = None
) -> Page[LedgerEntry]:
    return reads.get_ledger(principal, customer_id, limit, cursor)


@router.get("/v1/customers/<customer_id>/lots")
def lots(
    customer_id: CustomerId, principal: CurrentPrincipal, limit: Limit = None, cursor: Cursor = None
) -> Page[LotView]:
    return reads.get_lots(principal, customer_id, limit, cursor)


app = create_app()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("run") == "points":
        seconds_left = context.get_remaining_time_in_millis
        return run.run(time_left=lambda: seconds_left() / 1000).model_dump()
    return app.resolve(event, context)
