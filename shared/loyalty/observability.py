"""Powertools logger, metrics and tracer shared by every function (service name from env), and
the service's business metrics (docs/design.md#operations).

Business metrics carry one dimension from a closed set of values (an outcome, a source),
never a business or customer id: each distinct dimension value is a separate CloudWatch
metric, billed and kept for 15 months.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
metrics = Metrics()
# Only AWS SDK calls are traced: webhook URLs (some carry a secret in their path) stay out of
# traces. Tracing switches itself off outside Lambda (tests, the local stack, `sam local`).
tracer = Tracer(patch_modules=["botocore"])

OTHER = "other"

# Business metrics go out as single metrics (below), so the document `@metrics.log_metrics`
# flushes at the end of an invocation is usually empty; Powertools warns about each one.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@dataclass(frozen=True)
class BusinessMetric:
    name: str
    dimension: str | None = None
    values: frozenset[str] = frozenset()


CUSTOMERS_CREATED = BusinessMetric(
    "CustomersCreated", "source", frozenset({"staff", "registration", "anonymous", "import"})
)
IMPORT_ROWS = BusinessMetric(
    "ImportRows", "outcome", frozenset({"created", "updated", "unchanged", "suppressed", "failed"})
)
IMPORTS_FINISHED = BusinessMetric("ImportsFinished", "state", frozenset({"completed", "failed"}))
INVITATIONS_SENT = BusinessMetric("InvitationsSent", "kind", frozenset({"invitation", "reminder"}))
INVITATIONS_NOT_SENT = BusinessMetric("InvitationsNotSent", "kind", frozenset({"invitation", "reminder"}))
# delivered; retrying (failed, handed to the retry queue); dead (failed its last attempt).
WEBHOOK_DELIVERIES = BusinessMetric(
    "WebhookDeliveries", "outcome", frozenset({"delivered", "retrying", "dead"})
)
POINTS_EARNED = BusinessMetric("PointsEarned")
# Debited by redemptions when made (holds included); voids and reversals give points back.
POINTS_REDEEMED = BusinessMetric("PointsRedeemed")
POINTS_REDEMPTIONS_REVERSED = BusinessMetric("PointsRedemptionsReversed")

BUSINESS_METRICS = (
    CUSTOMERS_CREATED,
    IMPORT_ROWS,
    IMPORTS_FINISHED,
    INVITATIONS_SENT,
    INVITATIONS_NOT_SENT,
    WEBHOOK_DELIVERIES,
    POINTS_EARNED,
    POINTS_REDEEMED,
    POINTS_REDEMPTIONS_REVERSED,
)


def count(metric: BusinessMetric, value: float = 1, dimension_value: str | None = None) -> None:
    """Emit one data point now (an EMF line on stdout). Nothing when metrics are disabled.

    A metric with its own dimension cannot share the handler's EMF document (one dimension
    set per document), hence `single_metric`. Call sites add up a batch first, so a batch
    costs one line per outcome. A value outside the metric's set is counted as `other`
    (and logged): a metrics bug must not fail a change that is already committed.
    """
    if not value or is_metrics_disabled():
        return
    dimensions: dict[str, str] = {}
    if metric.dimension:
        if dimension_value not in metric.values:
            logger.warning(
                "metric dimension value outside its set; counted as other",
                extra={"metric": metric.name, "dimension": metric.dimension},
            )
            dimension_value = OTHER
        dimensions[metric.dimension] = str(dimension_value)
    with single_metric(
        name=metric.name, unit=MetricUnit.Count, value=value, default_dimensions=dimensions or None
    ):
        pass
