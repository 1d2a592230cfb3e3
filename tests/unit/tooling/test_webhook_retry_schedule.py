"""The deployed retry schedule (template.yaml + loyalty.config defaults) spans at least a day."""

from __future__ import annotations

from local import template as tpl
from loyalty.config import Settings

MAX_QUEUE_DELAY = 900


def test_deployed_retries_span_more_than_a_day_in_queue_sized_steps() -> None:
    # Given the dispatch function's environment as deployed
    spec = next(s for s in tpl.functions(tpl.load()) if s.logical_id == "WebhookDispatchFunction")
    config = Settings.model_validate({"TABLE_NAME": "t", **spec.environment})
    # When the waits between attempts are computed (base * 2**attempts made)
    waits = [config.webhook_backoff_base_seconds * 2**n for n in range(1, config.webhook_max_attempts)]
    # Then all retries together cover at least 24 hours, growing each time
    assert sum(waits) >= 24 * 3600
    assert waits == sorted(waits) and waits[0] <= MAX_QUEUE_DELAY
