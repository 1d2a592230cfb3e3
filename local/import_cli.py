"""`make import FILE=customers.csv`: a CSV import against the running local stack.

Does what a dashboard would: asks for an upload URL, PUTs the file to it (moto's S3, as
a browser would), then follows the import until it finishes and prints its report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local.token import make_token

FINISHED = ("completed", "failed")


def run_import(
    path: Path, base_url: str, business: str, timeout: float = 120.0, role: str = "admin"
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {make_token(business, role)}"}
    started = requests.post(
        f"{base_url}/v1/imports/uploads", json={"filename": path.name}, headers=headers, timeout=30
    )
    if started.status_code != 201:
        raise SystemExit(f"starting the upload failed: {started.status_code} {started.text}")
    ticket = started.json()
    uploaded = requests.request(
        ticket.get("method", "PUT"), ticket["upload_url"], data=path.read_bytes(), timeout=60
    )
    if uploaded.status_code >= 300:
        raise SystemExit(f"uploading failed: {uploaded.status_code} {uploaded.text[:500]}")
    deadline = time.monotonic() + timeout
    while True:
        report: dict[str, Any] = requests.get(
            f"{base_url}/v1/imports/{ticket['import_id']}", headers=headers, timeout=30
        ).json()
        if report.get("state") in FINISHED or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.import_cli", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the local stack's base URL")
    parser.add_argument("--business", default="demo")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    report = run_import(args.file, args.url.rstrip("/"), args.business, args.timeout)
    print(json.dumps(report, indent=2))
    return 0 if report.get("state") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
