"""Issue 2: cold init of each function module vs a bare boto3 DynamoDB client, and
DynamoDB requests per customer operation (counted with botocore event hooks).

Cold init runs each candidate in a fresh interpreter several times and compares the
fastest runs measured in this same run, so the figure is a ratio, not an absolute time.
The fastest, as timeit advises: other work on the machine only ever adds time, so the
minimum is the best estimate of the import itself. The baseline is measured again right
before each candidate, as the machine's speed drifts over a run. Peak RSS is a median.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from bench.common import Figure, counted_stack, lambda_environment, last_json, layer_path, run_python

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))

_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: the latter keeps the forking parent's high-water mark across exec.
hwm_kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print(json.dumps({{"seconds": elapsed, "max_rss_mb": hwm_kb / 1024}}))
"""

_BASELINE = "import boto3\nboto3.client('dynamodb')"

_MODULE = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
{extra}
"""


def _function_environment() -> dict[Path, dict[str, str]]:
    """Each function folder's environment from template.yaml (the modules check it at import)."""
    from local import template as tpl
    from local.resources import LOCAL_PARAMETERS

    return {
        spec.code_uri.resolve(): spec.environment
        for spec in tpl.functions(tpl.load(), dict(LOCAL_PARAMETERS))
    }


def _measure(body: str, function_env: dict[str, str] | None = None) -> tuple[float, float]:
    env = {
        **os.environ,
        **(function_env or {}),
        "PYTHONPATH": layer_path(),
        "TABLE_NAME": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
    times, rss = [], []
    for _ in range(RUNS):
        data = last_json(run_python(_PROBE.format(body=body), env, "-X", "frozen_modules=on"))
        times.append(data["seconds"])
        rss.append(data["max_rss_mb"])
    return min(times), statistics.median(rss)


def cold_start_figures() -> list[Figure]:
    figures: list[Figure] = []
    baselines: list[tuple[float, float]] = []
    environments = _function_environment()
    for folder in sorted(p for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()):
        base_s, base_rss = _measure(_BASELINE)  # adjacent in time to the candidate
        baselines.append((base_s, base_rss))
        env = environments.get(folder.resolve(), {})
        env = {**env, **lambda_environment(folder)}
        seconds, rss = _measure(_MODULE.format(path=str(folder / "app.py"), extra=""), env)
        ratio = seconds / base_s
        name = f"cold init {folder.name}"
        # Informational since issue 18: module import alone rewarded moving work into the first
        # request. HTTP functions now make their DynamoDB client while they initialise;
        # bench_first_answer measures what a caller waits for, to the first answer.
        figures.append(
            Figure(
                f"{name}: module import (with the DynamoDB client for HTTP functions) vs baseline",
                seconds * 1000,
                "info (see first answer)",
                ratio,
                True,
                " ms",
            )
        )
        figures.append(Figure(f"{name}: peak RSS", rss, "<= 80 MB", rss / 80, rss <= 80, " MB"))
    base_s = statistics.median(b[0] for b in baselines)
    base_rss = statistics.median(b[1] for b in baselines)
    return [
        Figure("cold init: import boto3 + dynamodb client (baseline)", base_s * 1000, "-", 1.0, True, " ms"),
        Figure("cold init baseline: peak RSS", base_rss, "-", None, True, " MB"),
        *figures,
    ]


def request_figures() -> list[Figure]:
    from local.harness import Api

    figures = []
    with counted_stack("bench-foundation") as (aws, counter):
        api = Api(aws)
        # Warm the handler module so only the operation's own requests are counted.
        api.ok("POST", "/v1/customers", {"email": "warm@example.com"})

        counter.reset()
        created = api.ok("POST", "/v1/customers", {"email": "ann@example.com", "first_name": "Ann"})
        figures.append(_per_op("create customer", counter.dynamodb(), 1))

        counter.reset()
        api.ok("GET", f"/v1/customers/{created['customer_id']}")
        figures.append(_per_op("get profile", counter.dynamodb(), 1))

        counter.reset()
        api.ok("GET", "/v1/customers", query={"email": "ann@example.com"})
        figures.append(_per_op("search by e-mail", counter.dynamodb(), 2))

        counter.reset()
        api.ok(
            "PATCH", f"/v1/customers/{created['customer_id']}", {"first_name": "Anne", "expected_version": 1}
        )
        # Read, the status catalog (rules are re-evaluated in the same transaction), the write.
        figures.append(_per_op("patch customer (read + catalog + write)", counter.dynamodb(), 3))
    return figures


def _per_op(name: str, measured: int, minimum: int) -> Figure:
    return Figure(
        f"DynamoDB requests: {name}", measured, f"<= {minimum}", measured / minimum, measured <= minimum
    )


def run() -> list[Figure]:
    return request_figures() + cold_start_figures()
