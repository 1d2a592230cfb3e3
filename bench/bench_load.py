"""Load on the local stack: 200 concurrent clients mixing reads and program-status changes.

Each client loops for BENCH_LOAD_SECONDS (default 30): reads a profile, searches, and changes
statuses (PUT program-status with and without `expected_version`, opt-out, invitations that
re-invite or remind), so changes collide on purpose. Afterwards every customer is checked
for lost or invented updates: its version must be 1 + the changes clients saw succeed, and
its history must hold exactly that many events.

The same load runs twice in one run: on a stack started with `--workers 0` (every function
in the stack's process, one invocation at a time per function: the engine before function
containers) and on the default stack (containers per function), and the figures compare
throughput and p95 latency of the two. BENCH_LOAD_BASELINE=0 skips the first.

    BENCH_LOAD_SECONDS=10 .venv/bin/python -m bench load
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.common import Figure
from local.stack import LocalStack

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "30"))
CUSTOMERS = 40
BASELINE = os.environ.get("BENCH_LOAD_BASELINE", "1") != "0"
# (operation, weight): reads dominate, changes collide on a small set of customers.
MIX = [
    ("profile", 40),
    ("search", 15),
    ("status_expected", 15),
    ("status_blind", 12),
    ("opt_out", 10),
    ("invite", 8),
]


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_status: Counter[int] = Counter()
        self.by_op: Counter[str] = Counter()
        self.changes: Counter[str] = Counter()  # customer id -> successful changes seen
        self.change_requests = 0
        self.conflicts = 0
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()

    def record(self, op: str, status: int, latency: float, customer: str | None, change: bool) -> None:
        with self.lock:
            self.by_status[status] += 1
            self.by_op[op] += 1
            self.latencies.append(latency)
            if change:
                self.change_requests += 1
                if 200 <= status < 300 and customer:
                    self.changes[customer] += 1
                elif status == 409:
                    self.conflicts += 1


def _client(
    stack: LocalStack, business: str, ids: list[str], deadline: float, tally: Tally, seed: int
) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers.update(stack.auth("staff", business))
    versions: dict[str, int] = {}
    ops, weights = zip(*MIX, strict=True)
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        cid = rng.choice(ids)
        change = op not in ("profile", "search")
        started = time.perf_counter()
        try:
            if op == "profile":
                response = session.get(stack.url(f"/v1/customers/{cid}"), timeout=60)
                if response.ok:
                    versions[cid] = response.json()["version"]
            elif op == "search":
                response = session.get(
                    stack.url("/v1/customers"), params={"q": "load", "limit": 10}, timeout=60
                )
            elif op in ("status_expected", "status_blind"):
                body: dict[str, Any] = {"status": rng.choice(["pending", "inactive"]), "reason": "load"}
                if op == "status_expected":
                    body["expected_version"] = versions.get(cid, 1)
                response = session.put(
                    stack.url(f"/v1/customers/{cid}/program-status"), json=body, timeout=60
                )
            elif op == "opt_out":
                response = session.post(stack.url(f"/v1/customers/{cid}/opt-out"), json={}, timeout=60)
            else:
                response = session.post(stack.url(f"/v1/customers/{cid}/invitations"), json={}, timeout=60)
            status = response.status_code
            if change and response.ok and "version" in response.json():
                versions[cid] = response.json()["version"]
        except requests.RequestException as exc:
            status = 599  # the client gave up: counted with the server errors
            with tally.lock:
                tally.failures[type(exc).__name__] += 1
        tally.record(op, status, time.perf_counter() - started, cid, change)


def _history_length(stack: LocalStack, business: str, cid: str) -> int:
    headers = stack.auth("staff", business)
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            stack.url(f"/v1/customers/{cid}/history"), params=params, headers=headers, timeout=60
        )
        page.raise_for_status()
        count += len(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return count


@dataclass
class Result:
    tally: Tally
    elapsed: float
    lost: int
    extra: int
    history_mismatch: int
    engine_cpu: float  # CPU seconds of the stack's own process during the load
    container_cpu: float  # and of its function containers

    @property
    def cpu_ms(self) -> float:
        """CPU per request, every process of the stack: what a busy machine shares out."""
        return (self.engine_cpu + self.container_cpu) * 1000 / max(self.total, 1)

    @property
    def engine_cpu_ms(self) -> float:
        """CPU per request in the stack's own process, which one interpreter lock serialises."""
        return self.engine_cpu * 1000 / max(self.total, 1)

    @property
    def total(self) -> int:
        return sum(self.tally.by_status.values())

    @property
    def throughput(self) -> float:
        return self.total / self.elapsed

    @property
    def p95(self) -> float:
        latencies = sorted(self.tally.latencies)
        return latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.tally.by_status.items() if status >= 500)


def _load(workers: int | None) -> Result:
    """The load on a stack of its own; `workers` None is the stack's default."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    business = f"load-{uuid.uuid4().hex[:6]}"
    with LocalStack(outbox_dir=workdir / "outbox", log_file=workdir / "stack.log", workers=workers) as stack:
        headers = stack.auth("staff", business)
        ids = []
        for n in range(CUSTOMERS):
            created = requests.post(
                stack.url("/v1/customers"),
                json={"email": f"load{n}@example.com", "first_name": f"Load{n}"},
                headers=headers,
                timeout=60,
            )
            created.raise_for_status()
            ids.append(created.json()["customer_id"])
        tally = Tally()
        cpu_before = requests.get(stack.url("/_local/health"), timeout=60).json()["cpu_seconds"]
        deadline = time.monotonic() + SECONDS
        started = time.monotonic()
        threads = [
            threading.Thread(target=_client, args=(stack, business, ids, deadline, tally, seed), daemon=True)
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        cpu_after = requests.get(stack.url("/_local/health"), timeout=60).json()["cpu_seconds"]
        stack.wait_idle(timeout=600)

        lost = extra = history_mismatch = 0
        for cid in ids:
            profile = requests.get(stack.url(f"/v1/customers/{cid}"), headers=headers, timeout=60).json()
            expected = 1 + tally.changes[cid]
            lost += profile["version"] < expected
            extra += profile["version"] > expected
            history_mismatch += _history_length(stack, business, cid) != profile["version"]
    return Result(
        tally,
        elapsed,
        lost,
        extra,
        history_mismatch,
        engine_cpu=cpu_after["engine"] - cpu_before["engine"],
        container_cpu=cpu_after["containers"] - cpu_before["containers"],
    )


def run() -> list[Figure]:
    before = _load(workers=0) if BASELINE else None
    after = _load(workers=None)
    tally = after.tally
    total, server_errors, lost, extra = after.total, after.server_errors, after.lost, after.extra
    history_mismatch = after.history_mismatch
    others = ", ".join(f"{s}: {n}" for s, n in sorted(tally.by_status.items()))
    gave_up = ", ".join(f"{k}: {n}" for k, n in tally.failures.items()) or "none"
    for label, result in (
        ("one invocation at a time per function (--workers 0)", before),
        ("containers", after),
    ):
        if result is not None:
            print(
                f"# load, {label}: {result.throughput:.0f} req/s, p95 {result.p95 * 1000:.0f} ms, "
                f"{result.server_errors} 5xx of {result.total}; CPU per request {result.cpu_ms:.1f} ms, "
                f"{result.engine_cpu_ms:.1f} ms of it in the stack's own process",
                file=sys.stderr,
            )
    name = f"{CLIENTS} clients x {SECONDS:g} s"
    figures = [
        Figure(f"load: throughput, {name}", after.throughput, "report", None, True, " req/s"),
        Figure("load: p95 latency", after.p95 * 1000, "report", None, True, " ms"),
    ]
    if before is not None:
        figures += [
            Figure(
                f"load: throughput, containers vs one invocation at a time ({before.throughput:.0f} req/s)",
                after.throughput / before.throughput,
                "ratio (higher is better)",
                after.throughput / before.throughput,
                True,
                "x",
            ),
            Figure(
                f"load: p95, containers vs one invocation at a time ({before.p95 * 1000:.0f} ms)",
                after.p95 / before.p95,
                "ratio (lower is better)",
                after.p95 / before.p95,
                True,
                "x",
            ),
            Figure(
                f"load: CPU per request, all processes, vs one at a time ({before.cpu_ms:.1f} ms)",
                after.cpu_ms,
                "ratio (lower is better)",
                after.cpu_ms / before.cpu_ms,
                True,
                " ms",
            ),
            Figure(
                f"load: CPU per request in the stack process vs one at a time ({before.engine_cpu_ms:.1f})",
                after.engine_cpu_ms,
                "ratio (lower is better)",
                after.engine_cpu_ms / before.engine_cpu_ms,
                True,
                " ms",
            ),
        ]
    figures += [
        Figure(
            f"load: 5xx (and client give-ups: {gave_up}) / requests",
            server_errors,
            "= 0",
            server_errors / max(total, 1),
            server_errors == 0,
        ),
        Figure(
            f"load: 409 / status changes ({others})",
            tally.conflicts,
            "expected > 0",
            tally.conflicts / max(tally.change_requests, 1),
            True,
        ),
        Figure(
            f"load: customers with lost updates ({CUSTOMERS} checked)",
            lost,
            "= 0",
            lost / CUSTOMERS,
            lost == 0,
        ),
        Figure(
            "load: customers with unexplained extra versions", extra, "= 0", extra / CUSTOMERS, extra == 0
        ),
        Figure(
            "load: customers whose history length != version",
            history_mismatch,
            "= 0",
            history_mismatch / CUSTOMERS,
            history_mismatch == 0,
        ),
    ]
    if before is not None:
        figures.append(
            Figure(
                "load: 5xx, lost updates and history mismatches with --workers 0",
                before.server_errors + before.lost + before.extra + before.history_mismatch,
                "= 0",
                None,
                before.server_errors + before.lost + before.extra + before.history_mismatch == 0,
            )
        )
    return figures
