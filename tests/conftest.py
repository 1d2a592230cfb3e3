"""Shared fixtures: fake AWS, the table built from template.yaml, handlers invoked like Lambda.

Environment is set before anything imports boto3 or Powertools; handler modules are
imported only after the mock has started (local.runtime loads them on first call).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.harness import fake_aws_environment

fake_aws_environment()

from local.harness import Api, Aws, claims, mocked_aws, table_items  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

__all__ = ["Api", "Aws", "claims", "load_event", "table_items"]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mocked_aws() as provisioned:
        yield provisioned


@pytest.fixture
def api(aws: Aws) -> Api:
    return Api(aws)


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` uses)."""
    return json.loads((EVENTS / name).read_text())
