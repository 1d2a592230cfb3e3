"""`make import FILE=customers.csv`: a CSV import against the running local stack.

Does what a dashboard would: asks for an upload URL, PUTs the file to it (moto's S3, as
a browser would), then follows the import until it finishes and prints its report.
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


def progress_line(report: dict[str, Any], width: int = 30) -> str:
    """`[#####.....]  42.0%  running   rows 4200  created 4100 ...` from a report."""
    share = float(report.get("progress") or 0.0)
    filled = round(share * width)
    counts = " ".join(
        f"{name} {report.get(name, 0)}"
        for name in ("created", "updated", "unchanged", "suppressed", "failed")
    )
    bar = "#" * filled + "." * (width - filled)
    return (
        f"[{bar}] {share * 100:5.1f}%  {report.get('state', '?'):<9} rows {report.get('total', 0)}  {counts}"
    )


def run_import(
    path: Path,
    base_url: str,
    business: str,
    timeout: float = 120.0,
    role: str = "admin",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {make_token(business, role)}"}
    started = requests.post(
        f"{base_url}/v1/imports/uploads", json={"filename": path.name}, headers=headers, timeout=30
    )
    if started.status_code != 201:
        raise SystemExit(f"starting the upload failed: {started.status_code} {started.text}")
    ticket = started.json()
    with path.open("rb") as body:  # streamed: a large file is never read whole
        uploaded = requests.request(
            ticket.get("method", "PUT"),
            ticket["upload_url"],
            data=body,
            headers={"Content-Length": str(path.stat().st_size)},
            timeout=600,
        )
    if uploaded.status_code >= 300:
        raise SystemExit(f"uploading failed: {uploaded.status_code} {uploaded.text[:500]}")
    deadline = time.monotonic() + timeout
    while True:
        report: dict[str, Any] = requests.get(
            f"{base_url}/v1/imports/{ticket['import_id']}", headers=headers, timeout=30
        ).json()
        if on_progress:
            on_progress(report)
        if report.get("state") in FINISHED or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.import_cli", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the local stack's base URL")
    parser.add_argument("--business", default="demo")
    parser.add_argument("--role", default="admin", choices=("admin", "service"))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()

    def show(report: dict[str, Any]) -> None:
        # One redrawn line on a terminal; one line per poll when piped.
        print(
            ("\r" if tty else "") + progress_line(report),
            end="" if tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    report = run_import(args.file, args.url.rstrip("/"), args.business, args.timeout, args.role, show)
    if tty:
        print(file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0 if report.get("state") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
