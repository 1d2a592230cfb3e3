"""Function containers: each function runs in worker processes, as Lambda runs it in containers.

A container is one worker process for one function. It loads the handler module on its
first invocation and keeps it (and every module-level client and cache) for the next, as
a warm Lambda container does, and it serves one invocation at a time. Each function has a
pool of containers started on demand up to a cap: a progress read, a webhook retry and a
running import of the same function run side by side, never one behind the other.

The engine's process keeps moto, the pumps and the HTTP front; a worker reaches moto over
HTTP through AWS_ENDPOINT_URL, like the in-process functions did. Workers are spawned (not
forked: the engine's process runs moto's server threads) and get the engine's environment
and sys.path explicitly.
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from local.template import ROOT, FunctionSpec

log = logging.getLogger("local.workers")

# Containers per function, started on demand. 0 (`--workers 0`) runs every function in the
# engine's own process, one invocation at a time per function (debuggers, baselines).
DEFAULT_WORKERS = 4
# An invocation may take the template's Timeout plus this, then its container is stopped
# like a timed-out Lambda container. The grace is Lambda's own 10 s for a cold start's
# init, which the handler's context (local.runtime.FakeContext) does not count either.
TIMEOUT_GRACE_SECONDS = 10.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("werkzeug", "botocore", "boto3", "urllib3")


class FunctionFailed(Exception):
    """The function raised, could not be imported, timed out or its container died; logged."""


class StackStopping(FunctionFailed):
    """The invocation was cut short (or refused) because the stack is stopping."""


@dataclass
class Reply:
    """What a container sends back for one invocation."""

    ok: bool
    value: Any = None
    error: str = ""
    trace: str = ""
    aws_requests: int = 0
    cpu_seconds: float = 0.0  # the container's CPU time during the invocation


# --- the worker process ----------------------------------------------------------------


def _serve(conn: Connection, spec: FunctionSpec, env: dict[str, str], log_level: str) -> None:
    """A container's main loop: one event in, one Reply out, until the engine goes away."""
    # Ctrl-C reaches the whole process group; the engine stops its containers itself, so a
    # running invocation does not die with a KeyboardInterrupt traceback first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(env)
    # Lambda's task root and /opt/python (the layer).
    for path in (str(ROOT / "shared"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    configure_logging(log_level)

    import boto3

    from local.runtime import invoke

    # Every AWS request of this container is counted and reported with each reply, so the
    # engine's /_local/health still counts the functions' requests.
    counter = _RequestCounter()
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", counter)
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return  # the engine is gone
        started = time.process_time()
        try:
            reply = Reply(ok=True, value=invoke(spec, event))
        except BaseException as exc:  # SystemExit too: a handler calling exit() fails one invocation
            reply = Reply(ok=False, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        reply.aws_requests = counter.take()
        reply.cpu_seconds = time.process_time() - started
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # the result could not be pickled: fail this invocation only
            conn.send(Reply(ok=False, error=f"unpicklable result: {exc}", aws_requests=reply.aws_requests))


class _RequestCounter:
    """A botocore before-call hook; functions make requests from threads of their own too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self._count += 1

    def take(self) -> int:
        """The requests since the last take."""
        with self._lock:
            count, self._count = self._count, 0
        return count


def configure_logging(level: str) -> None:
    """The stack's log format and quiet libraries, in the engine's process and in workers."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Metrics are disabled locally; Powertools still warns about each empty flush.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


# --- the engine's side -------------------------------------------------------------------


class _Container:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.name = process.name
        self._stopped = False
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any], timeout: float) -> Reply:
        """The reply. EOFError, OSError or ValueError (a closed pipe) when the process died or
        was stopped; TimeoutError when it ran out of time."""
        self.conn.send(event)
        if not self.conn.poll(timeout):
            raise TimeoutError
        reply: Reply = self.conn.recv()
        return reply

    def exit_code(self) -> int | None:
        with self._lock:
            if self._stopped:
                return None
            self.process.join(1)
            return self.process.exitcode

    def terminate(self) -> None:
        with self._lock:
            if not self._stopped and self.process.is_alive():
                self.process.terminate()

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL) and free its pipe; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self.process.is_alive():
                self.process.terminate()
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.conn.close()
            self.process.close()


class _Waiter:
    """An invocation waiting for a container; `grant` says what it got."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.grant: _Container | None = None
        self.may_start = False  # a slot was freed: start a container of its own


class _Pool:
    """One function's containers: the idle ones, how many exist, and who waits, in order.

    A container freed while invocations wait goes to the one that has waited longest (a
    thread arriving just then cannot take it first), so under load no request waits for
    many turns: that wait was the load benchmark's p95.
    """

    def __init__(self, spec: FunctionSpec, size: int, start: Callable[[FunctionSpec], _Container]) -> None:
        self.spec, self.size, self._start = spec, size, start
        self._idle: list[_Container] = []
        self._all: set[_Container] = set()
        self._starting = 0
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self._closed = False
        self._lock = threading.Lock()

    def acquire(self) -> _Container:
        with self._lock:
            if self._closed:
                raise StackStopping(f"{self.spec.logical_id}: the local stack is stopping")
            if self._idle and not self._waiting:
                return self._idle.pop()  # the most recently used: the warmest, as Lambda picks
            if len(self._all) + self._starting < self.size and not self._waiting:
                self._starting += 1
                waiter = None
            else:
                waiter = _Waiter()
                self._waiting.append(waiter)
        if waiter is not None:
            waiter.ready.wait()
            if waiter.grant is not None:
                return waiter.grant
            if not waiter.may_start:
                raise StackStopping(f"{self.spec.logical_id}: the local stack is stopping")
        return self._new_container()

    def _new_container(self) -> _Container:
        """Start a container in the slot counted in `_starting` (outside the lock: a spawn takes a while)."""
        try:
            container = self._start(self.spec)
        except Exception as exc:
            self._slot_freed(counted_as_starting=True)
            log.exception("function %s: could not start a container", self.spec.logical_id)
            raise FunctionFailed(f"{self.spec.logical_id}: could not start a container: {exc}") from exc
        with self._lock:
            self._starting -= 1
            self._all.add(container)
        return container

    def _slot_freed(self, counted_as_starting: bool = False) -> None:
        with self._lock:
            if counted_as_starting:
                self._starting -= 1
            if self._waiting and not self._closed:
                waiter = self._waiting.popleft()
                self._starting += 1
                waiter.may_start = True
                waiter.ready.set()

    def release(self, container: _Container, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed:
                if self._waiting:
                    waiter = self._waiting.popleft()
                    waiter.grant = container
                    waiter.ready.set()
                else:
                    self._idle.append(container)
                return
            self._all.discard(container)
        container.stop()
        self._slot_freed()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> list[_Container]:
        """Refuse new invocations; every container (busy ones too) for the caller to stop."""
        with self._lock:
            self._closed = True
            self._idle.clear()
            containers, self._all = list(self._all), set()
            while self._waiting:
                self._waiting.popleft().ready.set()  # neither granted nor allowed to start: stopping
        return containers

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"containers": len(self._all), "idle": len(self._idle), "waiting": len(self._waiting)}


class WorkerInvoker:
    """Invokes functions in pools of worker processes (see the module docstring).

    `on_requests` receives the AWS requests each invocation made in its container.
    """

    def __init__(
        self,
        specs: list[FunctionSpec],
        *,
        size: int,
        env: dict[str, str],
        on_requests: Callable[[int], None],
        log_level: str = "INFO",
    ) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._env = dict(env)
        self._log_level = log_level
        self._on_requests = on_requests
        self._pools = {spec.logical_id: _Pool(spec, size, self._start) for spec in specs}
        self._count_lock = threading.Lock()
        self._serial = itertools.count(1)
        self.count = 0
        self.cpu_seconds = 0.0  # CPU time of the invocations, summed over containers

    def _start(self, spec: FunctionSpec) -> _Container:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(theirs, spec, self._env, self._log_level),
            name=f"{spec.logical_id}-{next(self._serial)}",
            daemon=True,  # never outlives the engine, even when the engine is killed
        )
        process.start()
        theirs.close()  # the worker holds its end; EOF here then means the worker is gone
        return _Container(process, ours)

    def __call__(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        pool = self._pools[spec.logical_id]
        container = pool.acquire()
        reusable = False
        with self._count_lock:
            self.count += 1
        try:
            try:
                reply = container.invoke(event, spec.timeout + TIMEOUT_GRACE_SECONDS)
            except TimeoutError:
                log.error(
                    "function %s timed out after %ss; its container %s is stopped",
                    spec.logical_id,
                    spec.timeout,
                    container.name,
                )
                raise FunctionFailed(f"{spec.logical_id}: timed out after {spec.timeout}s") from None
            except (EOFError, OSError, ValueError):
                if pool.closed:
                    raise StackStopping(f"{spec.logical_id}: the local stack is stopping") from None
                code = container.exit_code()
                log.error(
                    "function %s: container %s died (exit code %s); the next invocation starts another",
                    spec.logical_id,
                    container.name,
                    code,
                )
                raise FunctionFailed(f"{spec.logical_id}: its container died (exit code {code})") from None
            reusable = True
            with self._count_lock:
                self.cpu_seconds += reply.cpu_seconds
            if reply.aws_requests:
                self._on_requests(reply.aws_requests)
            if not reply.ok:
                log.error("function %s failed:\n%s", spec.logical_id, reply.trace or reply.error)
                raise FunctionFailed(f"{spec.logical_id}: {reply.error}")
            return reply.value
        finally:
            pool.release(container, reusable)

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: pool.stats() for name, pool in self._pools.items()}

    def stop(self) -> None:
        """Stop every container; invocations still running fail with FunctionFailed."""
        containers = [c for pool in self._pools.values() for c in pool.close()]
        for container in containers:
            container.terminate()  # all at once: their shutdowns overlap
        for container in containers:
            container.stop()
