"""Settings per function (loyalty.config): checked when the function starts, naming what is missing."""

from __future__ import annotations

import pytest

from loyalty.config import (
    ConfigError,
    ImportSettings,
    TableSettings,
    WebhookDispatchSettings,
    configure,
    settings,
)


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    settings.cache_clear()


def test_a_missing_queue_url_fails_at_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a table and a secret but no import queue
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("SUPPRESSION_KEY", "a" * 32)
    monkeypatch.setenv("IMPORT_BUCKET", "b")
    monkeypatch.delenv("IMPORT_QUEUE_URL", raising=False)
    # When the import function configures itself / Then it fails naming the variable
    with pytest.raises(ConfigError, match="IMPORT_QUEUE_URL"):
        configure(ImportSettings)


def test_the_suppression_secret_has_no_default_and_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.delenv("SUPPRESSION_KEY", raising=False)
    with pytest.raises(ConfigError, match="SUPPRESSION_KEY"):
        configure(TableSettings)
    monkeypatch.setenv("SUPPRESSION_KEY", "short")
    with pytest.raises(ConfigError, match="SUPPRESSION_KEY"):
        configure(TableSettings)


def test_a_complete_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TABLE_NAME": "t",
        "SUPPRESSION_KEY": "k" * 20,
        "WEBHOOK_RETRY_QUEUE_URL": "q1",
        "WEBHOOK_DEAD_LETTER_QUEUE_URL": "q2",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBHOOK_MAX_ATTEMPTS", raising=False)
    loaded = configure(WebhookDispatchSettings)
    # Defaults agree with template.yaml (11 attempts over about 34 hours)
    assert (loaded.table_name, loaded.webhook_max_attempts) == ("t", 11)
