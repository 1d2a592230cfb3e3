"""Issue 8: a stream batch of 100 records to 3 endpoints that each answer in 50 ms, as a
ratio to one delivery (one record to one endpoint through the same handler); target <= 4x.

Run: PYTHONPATH=shared .venv/bin/python -m bench webhooks

Both are measured in this run on moto with real HTTP receivers on 127.0.0.1, so the figure
is a ratio of wall times, not an absolute time. The receivers run in a child process, as
real endpoints run elsewhere: their work must not share the dispatcher's interpreter.
Also counts the DynamoDB requests of the large batch (subscriptions read once per
business, attempts logged 25 per request).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from contextlib import ExitStack
from multiprocessing.connection import Connection
from typing import Any

from bench.common import Figure, counted_stack

RECORDS = 100
ENDPOINTS = 3
ANSWER_SECONDS = 0.05
RUNS = int(os.environ.get("BENCH_WEBHOOK_RUNS", "3"))


def _serve(conn: Connection, count: int, delay: float) -> None:
    """Child process: `count` receivers answering after `delay`; reports urls, then counts."""
    from local.webhook_receiver import running_receiver

    with ExitStack() as stack:
        receivers = [stack.enter_context(running_receiver(delay_seconds=delay)) for _ in range(count)]
        conn.send([r.url for r in receivers])
        conn.recv()  # stop
        conn.send([len(r.received) for r in receivers])


def _records(aws: Any, api: Any, business: str, count: int) -> list[dict[str, Any]]:
    from local.stream import StreamReader, passes_filters

    reader = StreamReader(aws.refs["LoyaltyTable.StreamArn"])
    reader.read()  # skip what came before
    for i in range(count):
        api.ok("POST", "/v1/customers", {"email": f"bench{i}@{business}.example.com"}, business=business)
    filters = aws.specs["WebhookDispatchFunction"].streams[0].get("FilterCriteria")
    records = [r for r in reader.read() if passes_filters(r, filters)]
    assert len(records) == count, len(records)
    return records


def _timed(spec: Any, records: list[dict[str, Any]]) -> float:
    from local.runtime import invoke

    started = time.perf_counter()
    result = invoke(spec, {"Records": records})
    elapsed = time.perf_counter() - started
    assert result == {"batchItemFailures": []}, result
    return elapsed


def run() -> list[Figure]:
    os.environ["LOYALTY_LOCAL_STACK"] = "true"  # loopback receivers, as on the local stack
    from local.harness import Api

    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=_serve, args=(child, ENDPOINTS, ANSWER_SECONDS), daemon=True)
    server.start()
    try:
        urls: list[str] = parent.recv()
        with counted_stack("bench-webhooks") as (aws, counter):
            from loyalty.config import settings

            settings.cache_clear()
            api = Api(aws)
            spec = aws.specs["WebhookDispatchFunction"]
            for url in urls:
                api.ok("POST", "/v1/webhooks", {"url": url, "events": ["*"]}, role="admin", business="big")
            api.ok("POST", "/v1/webhooks", {"url": urls[0], "events": ["*"]}, role="admin", business="one")
            big = _records(aws, api, "big", RECORDS)
            one = _records(aws, api, "one", 1)

            _timed(spec, one)  # warm: module import, thread pool, connection pools
            _timed(spec, big)
            single = statistics.median(_timed(spec, one) for _ in range(RUNS))
            counter.reset()
            batch_times = [_timed(spec, big)]
            batch_requests = counter.dynamodb()
            batch_times += [_timed(spec, big) for _ in range(RUNS - 1)]
            batch = statistics.median(batch_times)
        parent.send("stop")
        delivered = sum(parent.recv())
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    expected = (1 + RUNS) * (RECORDS * ENDPOINTS + 1)  # every run delivered everything
    assert delivered == expected, (delivered, expected)

    ratio = batch / single
    deliveries = RECORDS * ENDPOINTS
    minimum_requests = 1 + -(-deliveries // 25)  # one subscriptions Query + log batches
    return [
        Figure(
            f"webhooks: {RECORDS} records x {ENDPOINTS} endpoints (50 ms each) vs one delivery",
            batch * 1000,
            "<= 4x",
            ratio,
            ratio <= 4,
            " ms",
        ),
        Figure(
            f"webhooks: DynamoDB requests per {RECORDS}-record batch ({deliveries} deliveries)",
            batch_requests,
            f"<= {minimum_requests}",
            batch_requests / minimum_requests,
            batch_requests <= minimum_requests,
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure.row())
