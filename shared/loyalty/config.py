"""Environment parsed once into a typed model (the cookbook's pattern)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(alias="TABLE_NAME")
    import_bucket: str = Field(default="", alias="IMPORT_BUCKET")
    import_queue_url: str = Field(default="", alias="IMPORT_QUEUE_URL")
    webhook_retry_queue_url: str = Field(default="", alias="WEBHOOK_RETRY_QUEUE_URL")
    webhook_dead_letter_queue_url: str = Field(default="", alias="WEBHOOK_DEAD_LETTER_QUEUE_URL")
    rule_queue_url: str = Field(default="", alias="RULE_QUEUE_URL")
    # Keyed hashing of identifiers kept for suppression after exclusion.
    suppression_key: str = Field(default="local-suppression-key", alias="SUPPRESSION_KEY")
    public_base_url: str = Field(default="http://127.0.0.1:3000", alias="PUBLIC_BASE_URL")
    mail_sender: str = Field(default="loyalty@example.com", alias="MAIL_SENDER")
    # The local stack allows loopback webhook targets and plain http; AWS never does.
    local_stack: bool = Field(default=False, alias="LOYALTY_LOCAL_STACK")
    outbox_dir: str = Field(default="", alias="LOYALTY_OUTBOX_DIR")
    webhook_max_attempts: int = Field(default=8, alias="WEBHOOK_MAX_ATTEMPTS")
    webhook_backoff_base_seconds: int = Field(default=60, alias="WEBHOOK_BACKOFF_BASE_SECONDS")


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(os.environ)
