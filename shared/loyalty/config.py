"""Each function's environment, parsed into a typed model and checked when the function starts.

Every handler module calls `configure(<its model>)` at import: a missing table name or queue
URL fails the cold start with a message naming the variable, not the first request that
needs it. Library code reads the values through `settings()`. Defaults agree with
template.yaml; the suppression secret has none (a deployment must set one).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, ValidationError

Required = Annotated[str, StringConstraints(min_length=1)]
# Keyed hashes of excluded people's identifiers are only as strong as this secret.
Secret = Annotated[str, StringConstraints(min_length=16)]


class ConfigError(RuntimeError):
    """The function's environment lacks something it needs (raised at import, i.e. cold start)."""


class Settings(BaseModel):
    """Every variable any function reads; a function's own model says which it requires."""

    table_name: str = Field(default="", alias="TABLE_NAME")
    import_bucket: str = Field(default="", alias="IMPORT_BUCKET")
    import_queue_url: str = Field(default="", alias="IMPORT_QUEUE_URL")
    webhook_retry_queue_url: str = Field(default="", alias="WEBHOOK_RETRY_QUEUE_URL")
    webhook_dead_letter_queue_url: str = Field(default="", alias="WEBHOOK_DEAD_LETTER_QUEUE_URL")
    rule_queue_url: str = Field(default="", alias="RULE_QUEUE_URL")
    suppression_key: str = Field(default="", alias="SUPPRESSION_KEY")
    public_base_url: str = Field(default="http://127.0.0.1:3000", alias="PUBLIC_BASE_URL")
    mail_sender: str = Field(default="loyalty@example.com", alias="MAIL_SENDER")
    # The local stack allows loopback webhook targets and plain http; AWS never does.
    local_stack: bool = Field(default=False, alias="LOYALTY_LOCAL_STACK")
    # The local stack's own ports (its API, its AWS endpoint): never a webhook target.
    local_reserved_ports: str = Field(default="", alias="LOYALTY_LOCAL_RESERVED_PORTS")
    # template.yaml: 11 attempts with a 60 s base span about 34 hours.
    webhook_max_attempts: int = Field(default=11, alias="WEBHOOK_MAX_ATTEMPTS")
    webhook_backoff_base_seconds: int = Field(default=60, alias="WEBHOOK_BACKOFF_BASE_SECONDS")


# --- what each function requires (the cookbook's one model per handler) ------------------


class TableSettings(Settings):
    """Every function: the table, and the secret that keys suppression hashes (exclusion,
    imports and sign-ups all check them)."""

    table_name: Required = Field(alias="TABLE_NAME")
    suppression_key: Secret = Field(alias="SUPPRESSION_KEY")


class ImportSettings(TableSettings):
    import_bucket: Required = Field(alias="IMPORT_BUCKET")
    import_queue_url: Required = Field(alias="IMPORT_QUEUE_URL")


class InvitationFunctionSettings(TableSettings):
    public_base_url: Required = Field(alias="PUBLIC_BASE_URL")
    mail_sender: Required = Field(alias="MAIL_SENDER")


class PointsSettingsEnv(TableSettings):
    """The points function e-mails expiry reminders."""

    mail_sender: Required = Field(alias="MAIL_SENDER")


class RankedStatusesSettings(TableSettings):
    rule_queue_url: Required = Field(alias="RULE_QUEUE_URL")


class WebhookSettings(TableSettings):
    webhook_retry_queue_url: Required = Field(alias="WEBHOOK_RETRY_QUEUE_URL")


class WebhookDispatchSettings(WebhookSettings):
    webhook_dead_letter_queue_url: Required = Field(alias="WEBHOOK_DEAD_LETTER_QUEUE_URL")


def reserved_ports() -> frozenset[int]:
    return frozenset(int(p) for p in settings().local_reserved_ports.split(",") if p.strip().isdigit())


def configure(model: type[Settings]) -> Settings:
    """Check the environment against `model` now; raise ConfigError naming what is missing."""
    try:
        model.model_validate(os.environ)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{model.__name__}: the function's environment is incomplete: {problems}") from exc
    return settings()


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(os.environ)
