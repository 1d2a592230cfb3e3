"""Schemathesis against openapi.json on the local stack, with a valid token per role.

Every operation gets generated requests (valid and invalid data); no answer may be a 5xx,
and every documented answer must match its schema. `make test` runs a short form
(FUZZ_EXAMPLES, default 2 per operation and role, no coverage phase); `make fuzz` runs a
longer one with schemathesis's coverage phase (FUZZ_COVERAGE=1).
"""

from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from local.stack import LocalStack
from local.template import ROOT

pytestmark = pytest.mark.local

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
# The coverage phase (boundary values, odd verbs and content types for every operation) is
# the slow one: `make fuzz` runs it, the short form in `make test` does not.
COVERAGE = os.environ.get("FUZZ_COVERAGE", "0") == "1"
BUSINESS = f"fuzz-{uuid.uuid4().hex[:8]}"
# The customer is a fixed id so that some generated paths can hit their own profile.
SUBS = {"admin": None, "staff": None, "customer": "0123456789abcdef0123456789abcdef"}

schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
schema.config.phases.coverage.enabled = COVERAGE


@pytest.mark.parametrize("role", sorted(SUBS))
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the short form is the same requests on every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_answers_5xx_or_breaks_its_schema(
    case: schemathesis.Case, role: str, local_stack: LocalStack
) -> None:
    # Given a valid token for the role / When a generated request is sent
    headers = local_stack.auth(role, BUSINESS, SUBS[role])
    response = case.call(base_url=local_stack.url(""), headers=headers, timeout=30)
    # Then it is not a server error, and a documented answer matches its schema
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
