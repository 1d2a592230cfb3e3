"""Issue 8: a stream batch of 100 records to 3 endpoints that each answer in 50 ms, as a
ratio to one delivery (one record to one endpoint through the same handler); target <= 4x.

Run: PYTHONPATH=shared .venv/bin/python -m bench webhooks

Both are measured in this run on moto with real HTTP endpoints on 127.0.0.1, so the
figure is a ratio of wall times, not an absolute time; each is the median of RUNS calls.
The endpoints run in a child process (asyncio, so their own parsing is not measured), as
real endpoints run elsewhere. As timeit does, no garbage collection runs inside a timed
call: the heap holds moto's whole table, which the function's heap would not.
Also counts the DynamoDB requests of the large batch (subscriptions read once per
business, attempts logged 25 per request).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.common import Figure, counted_stack

RECORDS = 100
ENDPOINTS = 3
ANSWER_SECONDS = 0.05
RUNS = int(os.environ.get("BENCH_WEBHOOK_RUNS", "5"))


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, got: list[int]
) -> None:
    """One kept-alive connection: read each POST, wait `delay`, answer 200."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            await asyncio.sleep(delay)
            got[0] += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
    except asyncio.CancelledError:
        # The benchmark is over and asyncio.run cancels the kept-alive connections; ending
        # quietly keeps asyncio from printing a traceback per connection into make bench.
        writer.close()


def _serve(conn: Connection, count: int, delay: float) -> None:
    """Child process: `count` endpoints answering after `delay`; reports urls, then counts.

    An asyncio server per endpoint, all on one event loop: an endpoint's own parsing must
    not be what the figure measures (the tests' receiver verifies signatures instead).
    """

    async def main() -> None:
        counts = [[0] for _ in range(count)]
        servers = [
            await asyncio.start_server(
                lambda r, w, got=got: _answer(r, w, delay, got), "127.0.0.1", 0, backlog=1024
            )
            for got in counts
        ]
        conn.send([f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/hook" for s in servers])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # stop
        conn.send([got[0] for got in counts])

    asyncio.run(main())


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

    # As timeit does: no collection inside the timed call. The heap holds the benchmark's
    # own stack; a full collection of it lands in whichever call happens to trigger it.
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        result = invoke(spec, {"Records": records})
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    assert result == {"batchItemFailures": []}, result
    return elapsed


def _measure(urls: list[str], stack: Any) -> tuple[float, float, int]:
    """(median single delivery, median batch, DynamoDB requests of one batch) on `stack`."""
    from local.harness import Api
    from loyalty.config import settings

    with stack as (aws, counter):
        settings.cache_clear()
        api = Api(aws)
        spec = aws.specs["WebhookDispatchFunction"]
        for url in urls:
            api.ok("POST", "/v1/webhooks", {"url": url, "events": ["*"]}, role="admin", business="big")
        api.ok("POST", "/v1/webhooks", {"url": urls[0], "events": ["*"]}, role="admin", business="one")
        big = _records(aws, api, "big", RECORDS)
        one = _records(aws, api, "one", 1)

        _timed(spec, one)  # warm: module import, thread pool, connections
        _timed(spec, big)
        single = statistics.median(_timed(spec, one) for _ in range(RUNS))
        counter.reset()
        batch_times = [_timed(spec, big)]
        requests = counter.dynamodb()
        batch_times += [_timed(spec, big) for _ in range(RUNS - 1)]
        return single, statistics.median(batch_times), requests


def run() -> list[Figure]:
    os.environ["LOYALTY_LOCAL_STACK"] = "true"  # loopback receivers, as on the local stack
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=_serve, args=(child, ENDPOINTS, ANSWER_SECONDS), daemon=True)
    server.start()
    try:
        urls: list[str] = parent.recv()
        single, batch, batch_requests = _measure(urls, counted_stack("bench-webhooks"))
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
    name = f"webhooks: {RECORDS} records x {ENDPOINTS} endpoints (50 ms each) vs one delivery"
    return [
        Figure(name, batch * 1000, "<= 4x", ratio, ratio <= 4, " ms"),
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
