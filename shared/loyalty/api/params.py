"""Path and query parameter types shared by the handlers, so every route bounds them the same way."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from loyalty.domain.cards import CARD_NUMBER_PATTERN
from loyalty.domain.ids import ID_PATTERN
from loyalty.domain.ranked_statuses import STATUS_CODE_PATTERN

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
# Ids this service makes (imports, webhooks, deliveries) are safe ids too.
ResourceId = Annotated[str, Path(pattern=ID_PATTERN)]
CardNumberParam = Annotated[str, Path(pattern=CARD_NUMBER_PATTERN)]
StatusCodeParam = Annotated[str, Path(pattern=STATUS_CODE_PATTERN)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]
