"""`make import FILE=customers.csv [URL=http://127.0.0.1:3000]`: a CSV import on the local stack.

Does what a dashboard would: asks for an upload URL, PUTs the file to it (moto's S3, as
a browser would), then follows the import with `GET /v1/imports/{id}` until it finishes,
drawing a bar from the report's progress (updated by the server after each chunk of rows)
and the rows per second, and prints the report. The import runs on the server: Ctrl-C
here, or a poll that times out, leaves it running.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from local.token import make_token

FINISHED = ("completed", "failed")
DEFAULT_URL = "http://127.0.0.1:3000"
POLL_TIMEOUT = 30.0  # one GET; a slower answer is retried, the import is not given up
GIVE_UP_AFTER = 10  # polls in a row that reach no stack at all

# Exit codes besides 0 (completed) and 1 (failed).
USAGE, STILL_RUNNING, UNREACHABLE, INTERRUPTED = 2, 3, 4, 130


class StackRefused(Exception):
    """The stack refused the upload or a progress read; the message says why."""


def progress_line(report: dict[str, Any], width: int = 30, rows_per_second: float | None = None) -> str:
    """`[#####.....]  42.0%  running   rows 4200  created 4100 ...  350 rows/s` from a report."""
    share = float(report.get("progress") or 0.0)
    filled = round(share * width)
    counts = " ".join(
        f"{name} {report.get(name, 0)}"
        for name in ("created", "updated", "unchanged", "suppressed", "failed")
    )
    bar = "#" * filled + "." * (width - filled)
    rate = f"  {rows_per_second:,.0f} rows/s" if rows_per_second is not None else ""
    return (
        f"[{bar}] {share * 100:5.1f}%  {report.get('state', '?'):<9} rows {report.get('total', 0)}  "
        f"{counts}{rate}"
    )


def follow_hint(base_url: str, import_id: str, business: str) -> str:
    return (
        f'curl -H "Authorization: Bearer $(make -s token BUSINESS={business})" '
        f"{base_url}/v1/imports/{import_id}"
    )


def start_upload(path: Path, base_url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The upload ticket (`import_id`, `upload_url`), once the file is uploaded."""
    started = requests.post(
        f"{base_url}/v1/imports/uploads", json={"filename": path.name}, headers=headers, timeout=30
    )
    if started.status_code != 201:
        raise StackRefused(f"starting the upload failed: {started.status_code} {started.text[:500]}")
    ticket: dict[str, Any] = started.json()
    with path.open("rb") as body:  # streamed: a large file is never read whole
        uploaded = requests.request(
            ticket.get("method", "PUT"),
            ticket["upload_url"],
            data=body,
            headers={"Content-Length": str(path.stat().st_size)},
            timeout=600,
        )
    if uploaded.status_code >= 300:
        raise StackRefused(f"uploading failed: {uploaded.status_code} {uploaded.text[:500]}")
    return ticket


def follow(
    base_url: str,
    import_id: str,
    headers: dict[str, str],
    *,
    timeout: float = 0,
    every: float = 0.5,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_retry: Callable[[Exception], None] | None = None,
) -> dict[str, Any]:
    """Poll the report until the import finishes (or `timeout` seconds pass, 0: no limit).

    A poll that times out or finds no server is retried: the import runs on the server
    whatever happens here. ConnectionError after GIVE_UP_AFTER failures in a row;
    StackRefused when the stack answers with an error.
    """
    deadline = time.monotonic() + timeout if timeout > 0 else None
    failures = 0
    report: dict[str, Any] = {}
    while True:
        try:
            response = requests.get(
                f"{base_url}/v1/imports/{import_id}", headers=headers, timeout=POLL_TIMEOUT
            )
            if response.status_code != 200:
                raise StackRefused(
                    f"reading import {import_id} failed: {response.status_code} {response.text[:500]}"
                )
            report = response.json()
            failures = 0
        except (requests.Timeout, requests.ConnectionError) as exc:
            failures += 1
            if on_retry:
                on_retry(exc)
            if failures >= GIVE_UP_AFTER and isinstance(exc, requests.ConnectionError):
                raise
        else:
            if on_progress:
                on_progress(report)
            if report.get("state") in FINISHED:
                return report
        if deadline is not None and time.monotonic() > deadline:
            return report
        time.sleep(every)


def run_import(
    path: Path,
    base_url: str,
    business: str,
    timeout: float = 0,
    role: str = "admin",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    every: float = 0.5,
) -> dict[str, Any]:
    """Upload `path` and follow its import to the end (or `timeout` seconds); the last report."""
    headers = {"Authorization": f"Bearer {make_token(business, role)}"}
    ticket = start_upload(path, base_url, headers)
    return follow(
        base_url, ticket["import_id"], headers, timeout=timeout, every=every, on_progress=on_progress
    )


class _Bar:
    """The progress line: redrawn in place on a terminal, one line per change when piped."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.started = time.monotonic()
        self.rows = 0
        self._shown = ""  # the last line drawn, without its rate

    def rate(self) -> float:
        return self.rows / max(time.monotonic() - self.started, 1e-9)

    def show(self, report: dict[str, Any]) -> None:
        self.rows = int(report.get("total") or 0)
        plain = progress_line(report)
        line = progress_line(report, rows_per_second=self.rate())
        if self.tty:
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
        elif plain != self._shown:
            print(line, file=sys.stderr, flush=True)
        self._shown = plain

    def note(self, text: str) -> None:
        self.end_line()
        print(text, file=sys.stderr, flush=True)

    def end_line(self) -> None:
        if self.tty and self._shown:
            print(file=sys.stderr, flush=True)
            self._shown = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.import_cli", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the local stack's base URL (default {DEFAULT_URL})"
    )
    parser.add_argument("--business", default="demo")
    parser.add_argument("--role", default="admin", choices=("admin", "service"))
    parser.add_argument(
        "--timeout", type=float, default=0, help="stop following after SECONDS (default 0: until it ends)"
    )
    parser.add_argument("--every", type=float, default=0.5, help="seconds between progress polls")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return USAGE
    base_url = args.url.rstrip("/")
    headers = {"Authorization": f"Bearer {make_token(args.business, args.role)}"}
    bar = _Bar(sys.stderr.isatty())
    import_id = None
    try:
        try:
            ticket = start_upload(args.file, base_url, headers)
        except requests.RequestException as exc:
            print(
                f"no local stack answered at {base_url} ({type(exc).__name__}); is `make run` up?",
                file=sys.stderr,
            )
            return UNREACHABLE
        except StackRefused as exc:
            print(exc, file=sys.stderr)
            return 1
        import_id = str(ticket["import_id"])
        bar.note(f"uploaded {args.file} ({args.file.stat().st_size:,} bytes); import {import_id}")
        bar.started = time.monotonic()
        warned: list[str] = []

        def retrying(exc: Exception) -> None:
            if not warned:  # once: the bar goes on when the answers come back
                bar.note(f"(a progress poll failed: {type(exc).__name__}; still following)")
                warned.append(type(exc).__name__)

        report = follow(
            base_url,
            import_id,
            headers,
            timeout=args.timeout,
            every=args.every,
            on_progress=bar.show,
            on_retry=retrying,
        )
    except KeyboardInterrupt:
        bar.end_line()
        if import_id is None:
            print("\ninterrupted before the upload finished: nothing was imported", file=sys.stderr)
        else:
            print(
                f"\ninterrupted: import {import_id} keeps running on the server.\n"
                f"follow it with GET /v1/imports/{import_id}, e.g.\n"
                f"  {follow_hint(base_url, import_id, args.business)}",
                file=sys.stderr,
            )
        return INTERRUPTED
    except requests.ConnectionError:
        bar.note(f"lost the local stack at {base_url}; import {import_id} ran there")
        return UNREACHABLE
    except StackRefused as exc:
        bar.note(str(exc))
        return 1
    bar.end_line()
    seconds = time.monotonic() - bar.started
    rows = int(report.get("total") or 0)
    if report.get("state") not in FINISHED:
        print(
            f"still running after {args.timeout:g}s ({rows} rows so far); follow it with\n"
            f"  {follow_hint(base_url, import_id, args.business)}",
            file=sys.stderr,
        )
        print(json.dumps(report, indent=2))
        return STILL_RUNNING
    print(
        f"{report['state']}: {rows} rows in {seconds:.1f}s ({rows / max(seconds, 1e-9):,.0f} rows/s)",
        file=sys.stderr,
    )
    print(json.dumps(report, indent=2))
    return 0 if report.get("state") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
