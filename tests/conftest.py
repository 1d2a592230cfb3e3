"""Shared fixtures: fake AWS, the table built from template.yaml, handlers invoked like Lambda.

Environment is set before anything imports boto3 or Powertools; handler modules are
imported only after the mock has started (local.runtime loads them on first call).
Helpers live in tests/support, never imported from here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.harness import fake_aws_environment

fake_aws_environment()

from local.harness import mocked_aws  # noqa: E402
from tests.support import Api, Aws  # noqa: E402


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mocked_aws() as provisioned:
        yield provisioned


@pytest.fixture
def api(aws: Aws) -> Api:
    return Api(aws)
