"""The local stack (`make run`): what its pumps cost when quiet, and exactly-once delivery.

Counts come from the stack itself (/_local/health: AWS requests made in its process,
records each stream mapping delivered), measured in one run against template.yaml.

    .venv/bin/python -m bench local_stack
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.common import Figure
from local.stack import LocalStack

QUIET_SECONDS = 4.0
CUSTOMERS = 20
DISPATCH = "stream:WebhookDispatchFunction.TableStream"


def _health(stack: LocalStack) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(stack.url("/_local/health"), timeout=10).json()
    return body


def run() -> list[Figure]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-local-"))
    with LocalStack(outbox_dir=workdir / "outbox", log_file=workdir / "stack.log") as stack:
        stack.wait_idle()
        # Idle: pumps back off to one poll a second each; count what they ask moto for.
        time.sleep(1.5)
        before = _health(stack)
        time.sleep(QUIET_SECONDS)
        after = _health(stack)
        pumps = len(after["pumps"])
        # Two health calls make no AWS requests, so the difference is the pumps' own.
        idle_rate = (after["aws_requests"] - before["aws_requests"]) / QUIET_SECONDS

        # Busy: every profile write reaches the dispatch function once, no more, no less.
        business = f"bench-{uuid.uuid4().hex[:6]}"
        headers = stack.auth("admin", business)
        delivered_before = next(p for p in _health(stack)["pumps"] if p["name"] == DISPATCH)["delivered"]
        for n in range(CUSTOMERS):
            response = requests.post(
                stack.url("/v1/customers"),
                json={"email": f"c{n}.{business}@example.com"},
                headers=headers,
                timeout=30,
            )
            response.raise_for_status()
        stack.wait_idle(timeout=60)
        dispatch = next(p for p in _health(stack)["pumps"] if p["name"] == DISPATCH)
        per_write = (dispatch["delivered"] - delivered_before) / CUSTOMERS

    # The target as when a stream poll was 2 requests (describe + get_records); stream and
    # outbox pumps now read moto in the stack's process, so only SQS and S3 polls count.
    idle_target = 2.0 * pumps
    return [
        Figure(
            f"local stack idle: AWS requests/s, {pumps} pumps",
            idle_rate,
            f"<= {idle_target:g}/s",
            idle_rate / idle_target,
            idle_rate <= idle_target,
            "/s",
        ),
        Figure(
            "local stack: stream records delivered per profile write",
            per_write,
            "= 1",
            per_write / 1.0,
            per_write == 1.0 and dispatch["dead_lettered"] == 0,
        ),
    ]
