"""Issue 3: bulk CSV imports.

- DynamoDB requests per row of a 10,000-row CSV with 5% duplicates and 2% bad rows
  (counted with botocore hooks; target <= 0.1, a naive import needs more than 1).
- Rows per second of that import beside a bare moto BatchWriteItem of as many items,
  as a ratio measured in the same run.
- Peak memory (tracemalloc) of a large import vs a 10,000-row import (target <= 1.5x).
  moto runs in a separate process for this figure, so the table's own storage is not
  counted against the importer.

moto 5.2 deep-copies the whole table for every item of a TransactWriteItems (to roll
back on failure), which makes any transaction cost grow with the table. The benchmark
swaps that for one shallow snapshot per transaction (`fast_moto_snapshots`); request
counts are unaffected, and the bare-write baseline runs on the same patched moto.
Sizes: BENCH_IMPORT_ROWS (10000), BENCH_IMPORT_MEMORY_ROWS (500), BENCH_IMPORT_BIG_ROWS (2000).
Run: PYTHONPATH=shared .venv/bin/python -m bench import
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from collections import defaultdict
from typing import Any

from bench.common import Figure, counted_stack, moto_server
from local.sample_csv import csv_bytes

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "10000"))
# moto imports ~35 rows/s here: 100,000 rows would take most of an hour, so the memory
# figure compares the largest size that runs in about a minute with a quarter of it.
MEMORY_ROWS = int(os.environ.get("BENCH_IMPORT_MEMORY_ROWS", "500"))
BIG_ROWS = int(os.environ.get("BENCH_IMPORT_BIG_ROWS", "2000"))


def fast_moto_snapshots() -> None:
    """One shallow table snapshot per TransactWriteItems instead of a deep copy per item."""
    import copy as std_copy
    import types

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    if getattr(models, "_bench_fast_snapshots", False):
        return
    generation = [0]
    cache: dict[str, Any] = {}

    def snapshot(obj: Any, memo: Any = None) -> Any:
        if not isinstance(obj, Table):
            return std_copy.deepcopy(obj, memo)
        key = (id(obj), generation[0])
        if cache.get("key") != key:
            clone = std_copy.copy(obj)
            clone.items = defaultdict(
                dict, {h: (dict(v) if isinstance(v, dict) else v) for h, v in obj.items.items()}
            )
            cache.update(key=key, snap=clone)
        return cache["snap"]

    models.copy = types.SimpleNamespace(deepcopy=snapshot, copy=std_copy.copy)  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact(self: Any, *args: Any, **kwargs: Any) -> Any:
        generation[0] += 1
        return original(self, *args, **kwargs)

    models.DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    models._bench_fast_snapshots = True  # type: ignore[attr-defined]


def _start_import(aws_refs: dict[str, Any], api: Any, data: bytes) -> tuple[str, dict[str, Any]]:
    import boto3

    from local.events import s3_put_event

    ticket = api.ok("POST", "/v1/imports/uploads", {}, role="admin", business="bench")
    key = f"uploads/bench/{ticket['import_id']}.csv"
    bucket = aws_refs["ImportBucket"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return ticket["import_id"], s3_put_event(bucket, key, len(data))


def _import_cost(rows: int) -> dict[str, float]:
    """Requests and rows/s of an in-process import, and of a bare batch write of as many items."""
    from local.harness import Api
    from local.runtime import invoke

    fast_moto_snapshots()
    with counted_stack("bench-import") as (aws, counter):
        api = Api(aws)
        import_id, event = _start_import(aws.refs, api, csv_bytes(rows))
        counter.reset()
        started = time.perf_counter()
        invoke(aws.specs["CustomerImportFunction"], event)
        seconds = time.perf_counter() - started
        requests = counter.dynamodb()
        report = api.ok("GET", f"/v1/imports/{import_id}", role="admin", business="bench")
        assert report["state"] == "completed", report
        bare = _bare_batch_write(aws.table_name, rows)
    return {
        "requests": requests,
        "seconds": seconds,
        "bare_seconds": bare,
        "imported": report["created"] + report["updated"] + report["unchanged"],
        "failed": report["failed"],
    }


def _bare_batch_write(table: str, count: int) -> float:
    import boto3

    client = boto3.client("dynamodb")
    started = time.perf_counter()
    for start in range(0, count, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "PK": {"S": f"BARE#{i}"},
                                "SK": {"S": "PROFILE"},
                                "email": {"S": f"user{i}@example.com"},
                                "first_name": {"S": f"First{i}"},
                            }
                        }
                    }
                    for i in range(start, min(count, start + 25))
                ]
            }
        )
    return time.perf_counter() - started


# --- memory: moto in its own process -----------------------------------------------------


def _peak_memory(endpoint: str, rows: int, prefix: str) -> tuple[int, float]:
    """tracemalloc peak (bytes) of one import of `rows` rows against the moto server."""
    from local.harness import Api, served_aws
    from local.runtime import invoke

    with served_aws(endpoint, prefix) as aws:
        refs = aws.refs
        api = Api(aws)
        import_id, event = _start_import(refs, api, csv_bytes(20))
        invoke(aws.specs["CustomerImportFunction"], event)  # warm: imports and clients
        import_id, event = _start_import(
            refs, api, csv_bytes(rows, duplicates=0, bad=0).replace(b"user", b"next")
        )
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()
        invoke(aws.specs["CustomerImportFunction"], event)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report = api.ok("GET", f"/v1/imports/{import_id}", role="admin", business="bench")
        assert report["state"] == "completed" and report["total"] == rows, report
        return peak, seconds


def run() -> list[Figure]:
    cost = _import_cost(ROWS)
    per_row = cost["requests"] / ROWS
    rows_per_s = ROWS / cost["seconds"]
    bare_per_s = ROWS / cost["bare_seconds"]
    print(
        f"# import of {ROWS} rows: {cost['requests']:.0f} DynamoDB requests, {cost['seconds']:.1f}s "
        f"({rows_per_s:.0f} rows/s); bare batch write {bare_per_s:.0f} items/s; "
        f"{cost['imported']:.0f} imported, {cost['failed']:.0f} failed",
        file=sys.stderr,
    )
    figures = [
        Figure(
            f"import: DynamoDB requests per CSV row ({ROWS} rows, 5% dup, 2% bad)",
            per_row,
            "<= 0.1",
            per_row / 0.1,
            per_row <= 0.1,
        ),
        Figure(
            "import: rows/s vs bare moto batch write of as many items",
            rows_per_s / bare_per_s,
            "ratio (higher is better)",
            rows_per_s / bare_per_s,
            True,
            "x",
        ),
    ]
    with moto_server("bench.bench_import:fast_moto_snapshots") as endpoint:
        small, small_s = _peak_memory(endpoint, MEMORY_ROWS, "mem-small")
        big, big_s = _peak_memory(endpoint, BIG_ROWS, "mem-big")
    ratio = big / small
    print(
        f"# peak memory: {MEMORY_ROWS} rows {small / 2**20:.1f} MiB in {small_s:.0f}s, "
        f"{BIG_ROWS} rows {big / 2**20:.1f} MiB in {big_s:.0f}s",
        file=sys.stderr,
    )
    figures.append(
        Figure(
            f"import: peak memory {BIG_ROWS} rows vs {MEMORY_ROWS} rows",
            ratio,
            "<= 1.5x",
            ratio / 1.5,
            ratio <= 1.5,
            "x",
        )
    )
    return figures
