"""Function containers on the local stack: worker processes per function, as Lambda runs them.

The fake template's ContainerFunction answers with the process that ran it, its module
state and what it sees (environment, sys.path); query parameters make it sleep, crash or
call DynamoDB. SlowFunction is the same code with a one-second Timeout.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local.stack import LocalStack
from local.template import ROOT
from tests.local.conftest import FAKES, FakeStack

pytestmark = pytest.mark.local


def _call(stack: LocalStack, path: str = "/v1/container", **query: Any) -> requests.Response:
    return requests.get(stack.url(path), params=query, timeout=60)


def _seen(stack: LocalStack, **query: Any) -> dict[str, Any]:
    response = _call(stack, **query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _fake_stack(tmp_path: Path, **kwargs: Any) -> LocalStack:
    return LocalStack(
        template=FAKES / "template.yaml",
        outbox_dir=tmp_path / "outbox",
        log_file=tmp_path / "stack.log",
        env={"FAKE_RECORD_FILE": str(tmp_path / "records.jsonl")},
        **kwargs,
    )


def test_a_container_keeps_its_module_state_between_invocations(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When the function is invoked twice in a row
    first, second = _seen(stack), _seen(stack)
    # Then the same warm container ran both, outside the stack's own process, and its
    # module state carried over
    assert first["pid"] == second["pid"] != stack.process.pid  # type: ignore[union-attr]
    assert second["invocations"] == first["invocations"] + 1


def test_concurrent_invocations_run_in_containers_of_their_own_up_to_the_cap(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When six invocations that each take a second arrive together
    with ThreadPoolExecutor(max_workers=6) as pool:
        seen = list(pool.map(lambda _: _seen(stack, sleep=1), range(6)))

    # Then they ran side by side in several containers, never more than the cap (4)
    pids = {s["pid"] for s in seen}
    assert 2 <= len(pids) <= 4
    containers = requests.get(stack.url("/_local/health"), timeout=10).json()["containers"]
    assert containers["ContainerFunction"]["containers"] <= 4


def test_a_container_sees_the_functions_environment_and_the_layer_on_its_path(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When the function reports what it sees
    seen = _seen(stack)
    # Then it has the template's variables, the stack's moto, the --env overrides
    environment = seen["environment"]
    assert environment["TABLE_NAME"] == stack.resources()["refs"]["Table"]
    assert environment["AWS_ENDPOINT_URL"] == stack.moto_endpoint
    assert environment["LOYALTY_LOCAL_STACK"] == "true"
    assert environment["FAKE_RECORD_FILE"] == str(fake_stack.record_file)
    # And the repository root and the layer's folder (Lambda's /opt/python) on sys.path
    assert {str(ROOT), str(ROOT / "shared")} <= set(seen["sys_path"])
    # And a context whose remaining time starts from the template's Timeout
    assert 0 < seen["remaining_ms"] <= 10_000


def test_aws_requests_made_in_a_container_are_counted_by_the_stack(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    before = requests.get(stack.url("/_local/health"), timeout=10).json()
    # When one invocation makes 50 DynamoDB requests in its container
    _seen(stack, aws=50)
    # Then the stack's count of AWS requests includes them, and the invocation
    after = requests.get(stack.url("/_local/health"), timeout=10).json()
    assert after["aws_requests"] - before["aws_requests"] >= 50
    assert after["invocations"] > before["invocations"]


def test_a_crashed_container_fails_its_invocation_and_is_replaced(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # Given a warm container (the next invocation goes to it: the most recently used)
    warm = _seen(stack)["pid"]

    # When its process dies during an invocation
    crashed = _call(stack, crash=1)

    # Then that invocation is a 500 in the error format and the log says what happened
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    assert "died (exit code 3)" in stack.log_tail(20000)
    # And the next invocation runs in a new container
    assert _seen(stack)["pid"] != warm
    assert not _alive(warm)


def test_an_invocation_past_its_timeout_stops_its_container(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # When SlowFunction (Timeout: 1) runs for much longer than that
    late = _call(stack, "/v1/slow", sleep=60)

    # Then the invocation fails as a timed-out Lambda does, and the container was stopped
    assert late.status_code == 500
    assert "timed out after 1s" in late.json()["error"]["details"]["function"]
    # And the function still answers, from a new container
    assert _call(stack, "/v1/slow").status_code == 200


def test_ctrl_c_ends_every_container_even_a_busy_one(tmp_path: Path, until: Callable[..., Any]) -> None:
    # Given a stack with three containers, one of them in the middle of a long invocation
    stack = _fake_stack(tmp_path).start()
    pool = ThreadPoolExecutor(max_workers=3)
    try:
        pids = {s["pid"] for s in pool.map(lambda _: _seen(stack, sleep=1), range(3))}
        busy = pool.submit(_call, stack, sleep=60)

        def holding() -> bool:
            health = requests.get(stack.url("/_local/health"), timeout=10).json()
            containers = health["containers"]["ContainerFunction"]
            return bool(containers["containers"] > containers["idle"])

        assert until(holding, timeout=30)

        # When the stack gets Ctrl-C
        code = stack.stop()

        # Then it exits cleanly, and no container is left running
        assert code == 0, stack.log_tail()
        assert [pid for pid in pids if _alive(pid)] == []
        # And the cut-short invocation was answered (500) or dropped, not left hanging
        with contextlib.suppress(requests.ConnectionError):
            assert busy.result(timeout=30).status_code == 500
        assert "Traceback" not in stack.log_tail(50000)
    finally:
        stack.stop()
        pool.shutdown(cancel_futures=True)


def test_workers_0_runs_functions_in_the_stacks_own_process(tmp_path: Path) -> None:
    # Given a stack started with --workers 0 (the engine before containers; debuggers)
    with _fake_stack(tmp_path, workers=0) as stack:
        # When the function reports its process, twice
        first, second = _seen(stack), _seen(stack)
        # Then the stack's own process ran it, keeping module state
        assert first["pid"] == second["pid"] == stack.process.pid  # type: ignore[union-attr]
        assert second["invocations"] == first["invocations"] + 1
