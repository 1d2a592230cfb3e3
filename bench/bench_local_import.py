"""Issue 17: a CSV import on the local stack (`make import`'s path) vs bare moto writes.

For each size in BENCH_LOCAL_IMPORT_ROWS (default "10000"; "10000,100000" for the README's
figures, about 10 minutes more), in one run on one stack:

- import: a generated file (local.sample_csv: 5% duplicates, 2% bad rows) uploaded through
  the presigned URL and followed with GET /v1/imports/{id} every half second, as `make
  import` does; rows/s from the end of the upload to the report's `completed`, and the
  p95 latency of those progress reads (BENCH_LOCAL_IMPORT_WORKERS=0: the stack as it was,
  one invocation at a time per function, where a read waits for the import).
- bare, one item per row: BatchWriteItem of 25 profile-like items per request, as many
  items as rows, from this process to the same moto server (the issue's comparison).
- bare, same items: as many items as the import stored (the table's ItemCount before and
  after: profiles, lookups, audit events, row outcomes), written the same way; its
  rows/s is what the import would reach if it cost only its writes.

The bare writes go to a table of the same definition without a stream, so the stack's
pumps do not deliver them. Figures are ratios of rows/s measured in this run.

    BENCH_LOCAL_IMPORT_ROWS=10000,100000 PYTHONPATH=shared .venv/bin/python -m bench local_import
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.common import Figure
from local import template as tpl
from local.import_cli import start_upload
from local.sample_csv import expected_counts, write_csv
from local.stack import LocalStack

SIZES = [int(n) for n in os.environ.get("BENCH_LOCAL_IMPORT_ROWS", "10000").split(",") if n.strip()]
WORKERS = os.environ.get("BENCH_LOCAL_IMPORT_WORKERS")  # default: the stack's own


def _item_count(client: Any, table: str) -> int:
    return int(client.describe_table(TableName=table)["Table"]["ItemCount"])


def _bare_write(client: Any, table: str, count: int, tag: str) -> float:
    """Seconds to write `count` profile-like items, 25 per BatchWriteItem."""
    started = time.perf_counter()
    for start in range(0, count, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "PK": {"S": f"B#bench#C#{tag}{i}"},
                                "SK": {"S": "PROFILE"},
                                "email": {"S": f"{tag}{i}@example.com"},
                                "first_name": {"S": f"First{i}"},
                                "last_name": {"S": f"Last{i}"},
                                "program_status": {"S": "imported"},
                                "version": {"N": "1"},
                            }
                        }
                    }
                    for i in range(start, min(count, start + 25))
                ]
            }
        )
    return time.perf_counter() - started


def _bare_table(stack: LocalStack, client: Any) -> str:
    name = f"bare-{uuid.uuid4().hex[:8]}"
    definition = tpl.table_definition(tpl.load(), name)
    definition.pop("StreamSpecification", None)
    client.create_table(**definition)
    return name


def _import(stack: LocalStack, rows: int, workdir: Path, business: str) -> dict[str, Any]:
    """Upload and follow an import as make import does; its seconds and progress-read latencies."""
    csv = write_csv(workdir / f"customers-{rows}.csv", rows, tag=f"r{rows}")
    headers = stack.auth("admin", business)
    ticket = start_upload(csv, stack.base_url, headers)
    started = time.perf_counter()
    reads: list[float] = []
    while True:
        asked = time.perf_counter()
        # No read timeout: with one invocation at a time per function, a read waits for the import.
        response = requests.get(stack.url(f"/v1/imports/{ticket['import_id']}"), headers=headers)
        reads.append(time.perf_counter() - asked)
        report = response.json()
        if report["state"] in ("completed", "failed"):
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    expected = expected_counts(rows)
    got = {name: report[name] for name in expected}
    assert report["state"] == "completed" and got == expected, (report["state"], got, expected)
    reads.sort()
    p95 = reads[math.ceil(0.95 * len(reads)) - 1]  # nearest rank: with two reads, the slower
    return {"seconds": seconds, "read_p95": p95, "read_max": reads[-1], "reads": len(reads)}


def run() -> list[Figure]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-local-import-"))
    figures: list[Figure] = []
    workers = int(WORKERS) if WORKERS else None
    with LocalStack(outbox_dir=workdir / "outbox", log_file=workdir / "stack.log", workers=workers) as stack:
        client = stack.client("dynamodb")
        table = stack.resources()["refs"]["LoyaltyTable"]
        bare_table = _bare_table(stack, client)
        for rows in SIZES:
            items_before = _item_count(client, table)
            imported = _import(stack, rows, workdir, f"bench-{uuid.uuid4().hex[:6]}")
            stack.wait_idle(timeout=600)  # the stream's deliveries of the import, before bare writes
            items = _item_count(client, table) - items_before
            one_per_row = _bare_write(client, bare_table, rows, f"one{rows}-")
            same_items = _bare_write(client, bare_table, items, f"same{rows}-")
            health = requests.get(stack.url("/_local/health"), timeout=10).json()
            rate = rows / imported["seconds"]
            bare_rate = rows / one_per_row
            same_rate = rows / same_items
            print(
                f"# local import of {rows} rows: {imported['seconds']:.1f}s ({rate:.0f} rows/s), "
                f"{imported['reads']} progress reads meanwhile, p95 {imported['read_p95'] * 1000:.0f} ms, "
                f"longest {imported['read_max']:.1f}s, "
                f"{items} items stored ({items / rows:.2f} per row); bare batch write "
                f"{bare_rate:.0f} items/s; the same {items} items {same_items:.1f}s "
                f"({same_rate:.0f} rows/s); workers {health['workers']}",
                file=sys.stderr,
            )
            figures += [
                Figure(f"local import {rows} rows: rows/s", rate, "report", None, True, " rows/s"),
                Figure(
                    f"local import {rows} rows: p95 of the progress reads meanwhile",
                    imported["read_p95"] * 1000,
                    "report",
                    None,
                    True,
                    " ms",
                ),
                Figure(
                    f"local import {rows} rows: rows/s vs bare moto write of one item per row",
                    rate / bare_rate,
                    "ratio (higher is better)",
                    rate / bare_rate,
                    True,
                    "x",
                ),
                Figure(
                    f"local import {rows} rows: rows/s vs bare moto write of the items it stored"
                    f" ({items / rows:.1f} per row)",
                    rate / same_rate,
                    "ratio (higher is better)",
                    rate / same_rate,
                    True,
                    "x",
                ),
            ]
    return figures
