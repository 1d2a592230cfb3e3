"""Local-stack fixtures: the stack runs as a child process (see local/stack.py for why).

`local_stack` is the real template.yaml stack, shared by the session (each xdist worker
starts its own on a free port). `fake_stack` runs tests/local/fakes/template.yaml, whose
functions record what they receive, to test the pumps without the service's functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack

FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("local-stack")
    stack = LocalStack(port=0, outbox_dir=workdir / "outbox", log_file=workdir / "stack.log")
    with stack:
        yield stack


class FakeStack:
    def __init__(self, stack: LocalStack, record_file: Path) -> None:
        self.stack = stack
        self.record_file = record_file

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        rows = [json.loads(line) for line in self.record_file.read_text().splitlines() if line.strip()]
        return [r for r in rows if kind is None or r["kind"] == kind]


@pytest.fixture(scope="module")
def fake_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    workdir = tmp_path_factory.mktemp("fake-stack")
    record_file = workdir / "records.jsonl"
    stack = LocalStack(
        port=0,
        template=FAKES / "template.yaml",
        outbox_dir=workdir / "outbox",
        log_file=workdir / "stack.log",
        env={"FAKE_RECORD_FILE": str(record_file)},
        stream_retries=2,
        sqs_retry_seconds=0.2,
    )
    with stack:
        yield FakeStack(stack, record_file)


@pytest.fixture
def until() -> Callable[..., Any]:
    """Poll `check` until it returns something truthy (for effects outside wait_idle)."""
    import time

    def wait(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(every)

    return wait
