"""`LocalStack`: the local stack as a child process, the handle tests and scripts use.

The stack runs `python -m local --port 0` in its own process because the engine points
every boto3 client of its process at its moto server through the environment; in a
pytest process that also runs in-process `mock_aws` tests (and xdist workers) that would
leak both ways. Here nothing of the caller's process changes: the handle talks HTTP to
the stack and gives explicit-endpoint clients for looking at its AWS resources.

    with LocalStack(outbox_dir=tmp_path / "outbox") as stack:
        requests.post(f"{stack.base_url}/v1/customers", json=..., headers=stack.auth("admin"))
        stack.wait_idle()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from local.template import ROOT
from local.token import make_token


class LocalStackError(RuntimeError):
    pass


class LocalStack:
    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        outbox_dir: Path | str | None = None,
        env: dict[str, str] | None = None,
        log_file: Path | str | None = None,
        stream_retries: int = 3,
        sqs_retry_seconds: float = 1.0,
        startup_timeout: float = 60.0,
        template: Path | str | None = None,
        schedules_every: float = 0,
        workers: int | None = None,
    ) -> None:
        self.port, self.host = port, host
        self._workdir = Path(tempfile.mkdtemp(prefix="loyalty-local-"))
        self.outbox_dir = Path(outbox_dir) if outbox_dir else self._workdir / "outbox"
        self.env = dict(env or {})
        self.log_file = Path(log_file) if log_file else self._workdir / "stack.log"
        self.stream_retries = stream_retries
        self.sqs_retry_seconds = sqs_retry_seconds
        self.startup_timeout = startup_timeout
        self.template = Path(template) if template else None
        self.schedules_every = schedules_every
        self.workers = workers  # None: the stack's default (see `python -m local --help`)
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.moto_endpoint = ""
        self.session = requests.Session()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalStack:
        ready = self._workdir / "ready.json"
        ready.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "local",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--outbox-dir",
            str(self.outbox_dir),
            "--ready-file",
            str(ready),
            "--stream-retries",
            str(self.stream_retries),
            "--sqs-retry-seconds",
            str(self.sqs_retry_seconds),
        ]
        if self.template:
            cmd += ["--template", str(self.template)]
        if self.schedules_every:
            cmd += ["--schedules-every", str(self.schedules_every)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        for key, value in self.env.items():
            cmd += ["--env", f"{key}={value}"]
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME"))}
        child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "shared"), str(ROOT)])
        child_env["PYTHONUNBUFFERED"] = "1"
        log = self.log_file.open("ab")
        try:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()  # the child holds its own descriptor
        deadline = time.monotonic() + self.startup_timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"local stack exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise LocalStackError(
                    f"local stack did not start in {self.startup_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.base_url, self.moto_endpoint = info["base_url"], info["moto_endpoint"]
        self.port = int(self.base_url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """Ctrl-C (SIGINT) and wait for a clean exit; the exit code (0 when clean)."""
        process, self.process = self.process, None
        self.session.close()
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    # --- helpers for callers ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def token(
        self, role: str = "admin", business: str = "demo", sub: str | None = None, **claims: Any
    ) -> str:
        return make_token(business, role, sub, **claims)

    def auth(self, role: str = "admin", business: str = "demo", sub: str | None = None) -> dict[str, str]:
        """Headers with a bearer token for `role` in `business`."""
        return {"Authorization": f"Bearer {self.token(role, business, sub)}"}

    def run_schedule(self, name: str) -> Any:
        """Run a template schedule now (e.g. "InvitationRun"); the function's result."""
        response = self.session.post(self.url(f"/_local/schedules/{name}"), timeout=300)
        if response.status_code != 200:
            raise LocalStackError(f"schedule {name}: {response.status_code} {response.text}")
        return response.json()["result"]

    def wait_idle(self, timeout: float = 10.0) -> dict[str, Any]:
        """Return once the stream, SQS, S3 and outbox pumps have nothing in flight."""
        response = self.session.post(
            self.url("/_local/idle"), params={"timeout": timeout}, timeout=timeout + 10
        )
        if response.status_code != 200:
            raise LocalStackError(f"not idle after {timeout}s: {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def resources(self) -> dict[str, Any]:
        """Physical names by template logical id (`refs`), the moto endpoint, the outbox."""
        body: dict[str, Any] = self.session.get(self.url("/_local/resources"), timeout=10).json()
        return body

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's moto server (explicit endpoint: no global change)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(account_id_endpoint_mode="disabled"),
        )

    def outbox(self) -> list[Path]:
        """Sent e-mails (.eml), oldest first."""
        return sorted(self.outbox_dir.glob("*.eml")) if self.outbox_dir.exists() else []
