"""Shared benchmark plumbing: figures, request counting, the mocked stack, moto in a process."""

from __future__ import annotations

import atexit
import copy
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from local.harness import fake_aws_environment

fake_aws_environment()


@dataclass
class Figure:
    """One printed figure. `ratio` is measured/target-baseline as the issue defines it."""

    name: str
    measured: float
    target: str
    ratio: float | None
    ok: bool
    unit: str = ""

    def row(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.3g}"
        return [
            self.name,
            f"{self.measured:.4g}{self.unit}",
            self.target,
            ratio,
            "ok" if self.ok else "MISSED",
        ]


class RequestCounter:
    """Counts AWS API calls by `service.Operation` with botocore's event hooks.

    Registered on the default boto3 session, so every client created afterwards (the
    layer's, Powertools', the test's) is counted. Create it before the clients.
    """

    def __init__(self) -> None:
        import boto3

        self.calls: Counter[str] = Counter()
        self._session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert self._session is not None
        self._session.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def dynamodb(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("dynamodb."))

    def reset(self) -> None:
        self.calls.clear()

    def close(self) -> None:
        self._session.events.unregister("before-call", self._count)


@contextmanager
def counted_stack(prefix: str = "bench", endpoint: str | None = None) -> Iterator[tuple[Any, RequestCounter]]:
    """The mocked stack plus a counter of every AWS request made after it is set up.

    With `endpoint` (see moto_server) the stack is provisioned on that moto server
    instead of an in-process mock.
    """
    from local.harness import mocked_aws, served_aws

    with mocked_aws(prefix) if endpoint is None else served_aws(endpoint, prefix) as aws:
        from local.harness import reset_caches

        # moto resets boto3's default session when it starts: register after that, then
        # drop cached clients so every client is created anew and counted.
        counter = RequestCounter()
        reset_caches()
        try:
            yield aws, counter
        finally:
            counter.close()


ROOT = Path(__file__).resolve().parent.parent

_SERVER = """
import importlib, logging, sys, time
sys.path[:0] = [{root!r}, {shared!r}]
# werkzeug logs every request on stderr: hundreds of lines between make bench's figures.
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from local.harness import align_moto_limits
align_moto_limits()
for name in {speedups!r}:
    module, _, function = name.partition(":")
    getattr(importlib.import_module(module), function)()
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port={port}, verbose=False)
server.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(*speedups: str) -> Iterator[str]:
    """moto in its own process, as DynamoDB runs elsewhere; yields its endpoint URL.

    `speedups` name opt-in moto patches ("module:function") applied in that process.
    """
    port = _free_port()
    code = _SERVER.format(root=str(ROOT), shared=str(ROOT / "shared"), port=port, speedups=list(speedups))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class ItemsRead:
    """Counts DynamoDB items read, from each response, for every client of the default session."""

    def __init__(self, counter: RequestCounter) -> None:
        self.items: Counter[str] = Counter()
        self._session = counter._session
        self._session.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        if op in ("Query", "Scan"):
            self.items[op] += int(parsed.get("ScannedCount", 0))
        elif op == "GetItem":
            self.items[op] += 1 if parsed.get("Item") else 0
        elif op == "BatchGetItem":
            self.items[op] += sum(len(v) for v in (parsed.get("Responses") or {}).values())
        elif op == "TransactGetItems":
            self.items[op] += len(parsed.get("Responses") or [])

    def total(self) -> int:
        return sum(self.items.values())

    def reset(self) -> None:
        self.items.clear()

    def close(self) -> None:
        self._session.events.unregister("after-call.dynamodb", self._count)


def seed(table: str, items: list[dict[str, Any]]) -> None:
    import boto3

    from loyalty.repository.base import serialize

    client = boto3.client("dynamodb")
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


@contextmanager
def moto_without_table_snapshots() -> Iterator[None]:
    """moto deep-copies the whole table for every item of every transaction (to roll back).

    At 20,000 customers that costs about a second per claim, an artefact of the test double,
    not of DynamoDB. While measuring, tables are not snapshotted; `_measure` checks that no
    transaction was cancelled, so no rollback was ever needed.
    """
    from moto.dynamodb import models

    real = models.copy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, models.Table) else copy.deepcopy(value, memo)

    models.copy = SimpleNamespace(deepcopy=deepcopy)  # type: ignore[assignment]
    try:
        yield
    finally:
        models.copy = real


def scheduled_run_figures(
    run: str,
    size: int,
    work: tuple[str, str],
    done: int,
    expected: int,
    done_right: bool,
    items_read: int,
    requests: int,
) -> list[Figure]:
    """The three figures of a scheduled run over a table of `size`: the work done, the items
    read per unit of work (the <= 1.2x target: cost grows with the work, not the table), and
    requests per unit (informational). `work` names it: ("lots expired", "lot expired")."""
    what, each = work
    ratio = items_read / max(done, 1)
    per_request = requests / max(done, 1)
    return [
        Figure(f"{run}, table of {size:,}: {what}", done, f"== {expected}", done / expected, done_right),
        Figure(
            f"{run}, table of {size:,}: items read per {each}",
            ratio,
            "<= 1.2",
            ratio / 1.2,
            ratio <= 1.2,
            "x",
        ),
        Figure(f"{run}, table of {size:,}: DynamoDB requests per {each}", per_request, "info", None, True),
    ]


def lambda_environment(folder: Path) -> dict[str, str]:
    """What Lambda sets for a traced invocation (template.yaml turns X-Ray on). Without it the
    X-Ray SDK takes itself for a server and makes two X-Ray clients for centralised sampling
    while it is imported (about 140 ms no function would pay), and Powertools' Tracer is off."""
    return {
        "LAMBDA_TASK_ROOT": str(folder),
        "AWS_LAMBDA_FUNCTION_NAME": "cold",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        # Segments go to a local port nobody listens on (UDP: sent and forgotten, as on Lambda).
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }


@lru_cache(maxsize=1)
def layer_path() -> str:
    """The layer's code as `sam build` ships it (shared/Makefile's layer-code: the package with
    its bytecode compiled at build time), built once per run: a cold start on Lambda finds
    that bytecode and compiles nothing. The dependencies are the virtualenv's, whose bytecode
    pip compiled when it installed them."""
    folder = tempfile.mkdtemp(prefix="loyalty-layer-")
    atexit.register(shutil.rmtree, folder, True)
    build = ["make", "-s", "-C", str(Path(__file__).resolve().parent.parent / "shared"), "layer-code"]
    subprocess.run([*build, f"ARTIFACTS_DIR={folder}", f"PYTHON={sys.executable}"], check=True)
    return str(Path(folder) / "python")


def run_python(code: str, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter (this one's, with `flags`) running `code` from the repository root:
    the cold-start benchmarks' unit of measure."""
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=root
    )


def last_json(out: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a probe printed last."""
    return json.loads(out.stdout.strip().splitlines()[-1])


def measured_run(
    spec: Any, event: dict[str, Any], counter: RequestCounter, items_read: ItemsRead
) -> tuple[dict[str, Any], int, int]:
    """One scheduled run, counted from zero: its report, the items it read and its DynamoDB
    requests (tables not snapshotted, see moto_without_table_snapshots)."""
    from local.runtime import invoke

    counter.reset()
    items_read.reset()
    with moto_without_table_snapshots():
        report = invoke(spec, event)
    return report, items_read.total(), counter.dynamodb()
