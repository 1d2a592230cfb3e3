"""The local stack's engine: moto server, the template's resources, functions and pumps.

The engine owns its process: it points every boto3 client of the process at its own
ThreadedMotoServer through the environment. Functions run in pools of worker processes
(local.workers) that inherit that environment, several containers per function as in
Lambda; pumps and the HTTP front stay here, next to moto. `python -m local` runs it; tests
drive it in a subprocess through `local.stack.LocalStack`, so their in-process mocks are
untouched.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local import template as tpl
from local.runtime import RouteTable
from local.template import ROOT, FunctionSpec
from local.workers import DEFAULT_WORKERS, FunctionFailed, WorkerInvoker

__all__ = ["Engine", "FunctionFailed", "Invoker", "Schedule"]

log = logging.getLogger("local.engine")

# Lambda puts the layer on sys.path as /opt/python; here the layer's source folder.
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # moto does not serve the account-based Streams endpoint (docs/design.md#known-traps-moto).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "LOYALTY_LOCAL_STACK": "true",
    # Webhook retries wait 2, 4, 8 ... seconds locally instead of minutes (`--env` overrides).
    "WEBHOOK_BACKOFF_BASE_SECONDS": "1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # No X-Ray daemon here; Tracer would also switch itself off outside Lambda.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}

DEFAULT_OUTBOX = ROOT / ".local" / "outbox"


@dataclass
class Schedule:
    name: str
    function: FunctionSpec
    expression: str
    input: str | None
    description: str
    enabled: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function.logical_id,
            "expression": self.expression,
            "input": self.input,
            "description": self.description,
            "enabled": self.enabled,
        }


class Invoker:
    """Runs handlers in the engine's process, one invocation at a time per function.

    Handler modules are imported on first use (local.runtime), so a module that is broken
    or missing fails only the invocations that need it.
    """

    def __init__(self, specs: list[FunctionSpec]) -> None:
        self._locks = {spec.logical_id: threading.Lock() for spec in specs}
        self.count = 0

    def __call__(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        from local.runtime import invoke

        with self._locks[spec.logical_id]:
            self.count += 1
            try:
                return invoke(spec, event)
            except (Exception, SystemExit) as exc:  # a module calling exit() must not end a thread
                log.error("function %s failed:\n%s", spec.logical_id, traceback.format_exc())
                raise FunctionFailed(f"{spec.logical_id}: {type(exc).__name__}: {exc}") from exc

    def stats(self) -> dict[str, dict[str, int]]:
        return {}

    def stop(self) -> None:
        pass  # invocations run on the callers' threads


class _PumpThread(threading.Thread):
    """Polls one pump: at once while there is work, slowing to `IDLE_INTERVAL` when quiet.

    Anything that may have produced work (an API request, another pump's invocation)
    nudges every pump awake, so a slow idle poll costs no latency. A nudge is a hint: a
    pump polls at most once per its `interval` however often it is nudged (under load
    every API request nudges, and each pump asked moto after each request), unless
    `wait_idle` asks, which wants an answer now.
    """

    IDLE_INTERVAL = 1.0

    def __init__(self, engine: Engine, pump: Any) -> None:
        super().__init__(name=f"pump-{pump.name}", daemon=True)
        self.engine, self.pump = engine, pump
        self.cycles = 0
        self.last_work = 0
        self.wake = threading.Event()
        self.urgent = False

    def poke(self, urgent: bool = False) -> None:
        if urgent:
            self.urgent = True
        self.wake.set()

    def run(self) -> None:
        stop = self.engine.stopping
        quiet = 0
        while not stop.is_set():
            polled = time.monotonic()
            try:
                work = int(self.pump.poll())
            except Exception:
                if stop.is_set():
                    return
                log.exception("%s: poll failed", self.pump.name)
                work = 0
            with self.engine.idle_changed:
                self.cycles += 1
                self.last_work = work
                if work:
                    self.engine.activity += 1
                self.engine.idle_changed.notify_all()
            if work:
                quiet = 0
                self.engine.nudge()  # what this did may be work for another pump
                continue
            quiet += 1
            self.wake.wait(min(self.IDLE_INTERVAL, self.pump.interval * 2 ** min(quiet, 6)))
            self.wake.clear()
            while not self.urgent and not stop.is_set():
                spare = polled + self.pump.interval - time.monotonic()
                if spare <= 0:
                    break
                self.wake.wait(spare)
                self.wake.clear()
            self.urgent = False


class Engine:
    def __init__(
        self,
        *,
        outbox_dir: Path | str | None = None,
        prefix: str = "loyalty",
        env: dict[str, str] | None = None,
        stream_max_retries: int = 3,
        sqs_retry_seconds: float = 1.0,
        template_path: Path = tpl.TEMPLATE,
        public_base_url: str | None = None,
        workers: int = DEFAULT_WORKERS,
        log_level: str = "INFO",
    ) -> None:
        self.outbox_dir = Path(outbox_dir or os.environ.get("LOYALTY_OUTBOX_DIR") or DEFAULT_OUTBOX).resolve()
        self.prefix = prefix
        self.env_overrides = dict(env or {})
        self.stream_max_retries = stream_max_retries
        self.sqs_retry_seconds = sqs_retry_seconds
        self.template_path = template_path
        self.public_base_url = public_base_url
        self.workers = workers
        self.log_level = log_level
        self.stopping = threading.Event()
        self.idle_changed = threading.Condition()
        self.activity = 0
        self.refs: dict[str, Any] = {}
        self.specs: dict[str, FunctionSpec] = {}
        self.schedules: dict[str, Schedule] = {}
        self.pumps: list[Any] = []
        self._threads: list[_PumpThread] = []
        self._timers: list[threading.Thread] = []
        self._requests_lock = threading.Lock()
        self.aws_requests = 0
        self._moto: Any = None
        self.moto_endpoint = ""
        self.invoker: Invoker | WorkerInvoker | None = None
        self.routes = RouteTable([])

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Engine:
        from moto.server import ThreadedMotoServer

        os.environ.update(FAKE_CREDENTIALS)
        # DynamoDB's 100-item transactions, one DynamoDB request at a time across server
        # threads, an item-level rollback so packing thousands of cards does not copy the
        # table each time, queries that do not sort the whole table and answers that carry
        # items dumped as JSON (local.harness says why each).
        from local.harness import (
            align_moto_limits,
            fast_moto_item_answers,
            fast_moto_queries,
            fast_moto_transactions,
            serialize_moto_requests,
        )

        align_moto_limits()
        serialize_moto_requests()
        fast_moto_transactions()
        fast_moto_queries()
        fast_moto_item_answers()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        # Every boto3 client of this process (the functions' too) talks to this server.
        os.environ["AWS_ENDPOINT_URL"] = self.moto_endpoint
        # The outbox pump writes every SES message at the SES boundary; loyalty.adapters.mail would
        # write a second copy of its own messages if it saw this variable.
        os.environ.pop("LOYALTY_OUTBOX_DIR", None)
        self._warm_boto3()

        from local.resources import provision

        template = tpl.load(self.template_path)
        self.refs = provision(template, prefix=self.prefix)
        specs = tpl.functions(template, self.refs)
        for spec in specs:
            os.environ.update(spec.environment)
        if self.public_base_url:
            # Links in e-mails (invitation accept/decline) must lead to this server.
            os.environ["PUBLIC_BASE_URL"] = self.public_base_url
        # A webhook may not target the stack itself (a loop hung it once): its API and moto.
        own = [urlsplit(u).port for u in (self.public_base_url or "", self.moto_endpoint)]
        os.environ["LOYALTY_LOCAL_RESERVED_PORTS"] = ",".join(str(p) for p in own if p)
        os.environ.update(self.env_overrides)
        self._reset_layer_caches()
        self.specs = {s.logical_id: s for s in specs}
        self.routes = RouteTable(specs)
        if self.workers > 0:
            # Workers get this process's environment as it now stands: the template's function
            # variables, the endpoint, PUBLIC_BASE_URL and the --env overrides.
            self.invoker = WorkerInvoker(
                specs,
                size=self.workers,
                env=dict(os.environ),
                on_requests=self._add_requests,
                log_level=self.log_level,
            )
        else:
            self.invoker = Invoker(specs)
        self.schedules = self._schedules(specs)
        self.pumps = self._pumps(specs)
        self._threads = [_PumpThread(self, pump) for pump in self.pumps]
        for thread in self._threads:
            thread.start()
        return self

    def nudge(self, urgent: bool = False) -> None:
        for thread in self._threads:
            thread.poke(urgent)

    def stop(self) -> None:
        self.stopping.set()
        if self.invoker is not None:
            self.invoker.stop()  # first: a pump waiting on a long invocation returns at once
        self.nudge()
        for thread in [*self._threads, *self._timers]:
            thread.join(timeout=10)
        if self._moto is not None:
            self._moto.stop()
            server = getattr(self._moto, "_server", None)
            if server is not None:
                server.server_close()  # release the port now, not at garbage collection
            self._moto = None

    def _warm_boto3(self) -> None:
        # Creating the default session's first clients from many threads at once races in
        # botocore; build them here, once, before any thread starts.
        import boto3

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        # Every AWS request of the process (functions and pumps), for /_local/health and bench.
        boto3.DEFAULT_SESSION.events.register("before-call", self._count_request)
        for service in ("dynamodb", "dynamodbstreams", "sqs", "s3", "ses", "sesv2"):
            boto3.client(service)

    def _count_request(self, model: Any, **_: Any) -> None:
        self._add_requests(1)

    def _add_requests(self, count: int) -> None:
        with self._requests_lock:
            self.aws_requests += count

    @staticmethod
    def _reset_layer_caches() -> None:
        try:
            from loyalty.adapters import aws
            from loyalty.config import settings
        except ImportError:  # the layer is broken mid-edit: functions will report it
            log.exception("could not import the loyalty layer")
            return
        settings.cache_clear()
        aws.reset()

    # --- wiring from the template ------------------------------------------------------

    def _queue_urls_by_arn(self) -> dict[str, str]:
        return {
            str(self.refs[f"{name}.Arn"]): str(self.refs[name])
            for name in list(self.refs)
            if f"{name}.Arn" in self.refs and str(self.refs[f"{name}.Arn"]).startswith("arn:aws:sqs:")
        }

    def _pumps(self, specs: list[FunctionSpec]) -> list[Any]:
        import boto3

        from local.pumps import OutboxPump, S3Pump, SqsPump, StreamPump

        sqs, s3 = boto3.client("sqs"), boto3.client("s3")
        urls = self._queue_urls_by_arn()
        pumps: list[Any] = []
        invoker = self.invoker
        assert invoker is not None
        for spec in specs:
            for raw in spec.streams:
                props = tpl.resolve(raw, self.refs)
                if props.get("Enabled", True) is not False:
                    pumps.append(
                        StreamPump(spec, props, invoker, sqs, urls, max_retries=self.stream_max_retries)
                    )
            for raw in spec.queues:
                props = tpl.resolve(raw, self.refs)
                arn = str(props["Queue"])
                if arn in urls and props.get("Enabled", True) is not False:
                    pumps.append(
                        SqsPump(
                            spec, props, invoker, sqs, urls[arn], arn, retry_seconds=self.sqs_retry_seconds
                        )
                    )
                elif arn not in urls:
                    log.warning("%s: queue %s is not provisioned locally", spec.logical_id, arn)
            for raw in spec.buckets:
                pumps.append(S3Pump(spec, tpl.resolve(raw, self.refs), invoker, s3))
        pumps.append(OutboxPump(self.outbox_dir))
        return pumps

    def _schedules(self, specs: list[FunctionSpec]) -> dict[str, Schedule]:
        found: dict[str, Schedule] = {}
        for spec in specs:
            for raw in spec.schedules:
                props = tpl.resolve(raw, self.refs)
                found[str(props["name"])] = Schedule(
                    name=str(props["name"]),
                    function=spec,
                    expression=str(props.get("ScheduleExpression") or props.get("Schedule") or ""),
                    input=props.get("Input"),
                    description=str(props.get("Description") or ""),
                    enabled=props.get("Enabled", True) is not False and props.get("State") != "DISABLED",
                )
        return found

    # --- operations ----------------------------------------------------------------------

    def run_schedule(self, name: str) -> Any:
        """Invoke the schedule's function now with the schedule's Input; KeyError if unknown."""
        from local.events import schedule_event

        schedule = self.schedules[name]
        assert self.invoker is not None
        result = self.invoker(schedule.function, schedule_event(schedule.name, schedule.input))
        self.note_activity()
        return result

    def run_schedules_every(self, seconds: float) -> threading.Thread:
        def loop() -> None:
            while not self.stopping.wait(seconds):
                for name, schedule in self.schedules.items():
                    if not schedule.enabled:
                        continue
                    try:
                        self.run_schedule(name)
                    except Exception:
                        log.exception("schedule %s failed", name)

        thread = threading.Thread(target=loop, name="schedules", daemon=True)
        thread.start()
        self._timers.append(thread)
        return thread

    def note_activity(self) -> None:
        with self.idle_changed:
            self.activity += 1
        self.nudge()

    def status(self) -> dict[str, Any]:
        return {
            "pumps": [
                {
                    "name": t.pump.name,
                    "cycles": t.cycles,
                    "pending": t.pump.pending(),
                    "alive": t.is_alive(),
                    **t.pump.stats(),
                }
                for t in self._threads
            ],
            "activity": self.activity,
            "aws_requests": self.aws_requests,
            "invocations": self.invoker.count if self.invoker else 0,
            "workers": self.workers,
            "containers": self.invoker.stats() if self.invoker else {},
            # What the load benchmark divides by requests: this process's CPU (moto, the HTTP
            # front, pumps; the functions too with --workers 0) and the containers'.
            "cpu_seconds": {
                "engine": round(time.process_time(), 3),
                "containers": round(getattr(self.invoker, "cpu_seconds", 0.0), 3),
            },
        }

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every pump has polled twice and found nothing, with no work anywhere since.

        Messages a function itself delays (SQS DelaySeconds) are not waited for.
        """
        deadline = time.monotonic() + timeout
        with self.idle_changed:
            while time.monotonic() < deadline:
                self.nudge(urgent=True)
                marks = {t: t.cycles for t in self._threads}
                activity = self.activity
                # Two more cycles each: the second surely started after this point.
                while any(t.cycles < marks[t] + 2 for t in self._threads if t.is_alive()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.idle_changed.wait(left)
                quiet = all(t.last_work == 0 and t.pump.pending() == 0 for t in self._threads)
                if quiet and self.activity == activity:
                    return True
                self.idle_changed.wait(0.05)
        return False
