"""loyalty.observability.count: one EMF line per call, only declared low-cardinality dimensions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.observability import BUSINESS_METRICS, IMPORT_ROWS, POINTS_EARNED, count


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_a_count_is_one_emf_line_with_the_service_and_its_dimension(
    metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # When 3 created rows are counted / Then one line carries them under ImportRows, outcome created
    count(IMPORT_ROWS, 3, "created")
    (doc,) = lines(capsys)
    assert (doc["ImportRows"], doc["outcome"], doc["service"]) == ([3.0], "created", "loyalty-test")
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["outcome", "service"]]


def test_a_value_outside_the_declared_set_is_counted_as_other(
    metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a caller passes something that is not an outcome (say, an id by mistake)
    count(IMPORT_ROWS, 1, "cus_123")
    # Then the id never becomes a dimension value
    (doc,) = lines(capsys)
    assert doc["outcome"] == "other"


def test_nothing_is_printed_for_zero_or_when_metrics_are_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    count(POINTS_EARNED, 0)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    count(POINTS_EARNED, 10)
    assert lines(capsys) == []


def test_declared_metrics_have_small_closed_sets_of_dimension_values() -> None:
    names = [m.name for m in BUSINESS_METRICS]
    assert len(names) == len(set(names))
    for metric in BUSINESS_METRICS:
        assert (metric.dimension is None) == (not metric.values), metric
        assert len(metric.values) <= 10, metric
        assert metric.dimension not in ("business_id", "customer_id"), metric
