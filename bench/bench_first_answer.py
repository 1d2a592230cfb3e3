"""Issue 18: cold start as a caller waits for it, per HTTP function.

Each candidate is a fresh interpreter that imports a function's `app.py` and answers one
real request (a GET where the function has one) through `lambda_handler`, against moto
running as a server in another process, as DynamoDB runs elsewhere. The baseline is a
fresh interpreter running `import boto3; boto3.client("dynamodb").query(...)` against the
same server. Time runs from the spawn of the process to its answer, interpreter start
included (the same for both, about 25 ms here). Fastest of 7 runs each, as timeit advises
(other load only ever adds time); the baseline is measured again right before each
candidate, because a 2-core machine's speed drifts over a run.

    PYTHONPATH=shared .venv/bin/python -m bench first_answer
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure, lambda_environment, last_json, layer_path, moto_server, run_python

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
TARGET = 1.5
BUSINESS = "cold"

_PROBE = r"""
{body}
import json, time
print(json.dumps({{"answered_at": time.time(), "answer": answer}}))
"""

_BASELINE = """
import boto3
out = boto3.client("dynamodb").query(
    TableName={table!r},
    KeyConditionExpression="PK = :pk",
    ExpressionAttributeValues={{":pk": {{"S": {pk!r}}}}},
)
answer = out["ResponseMetadata"]["HTTPStatusCode"]
"""

_FUNCTION = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module  # as Lambda's import of the handler module does
spec.loader.exec_module(module)
class Context:
    function_name = "cold"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 29000
answer = module.lambda_handler(json.loads({event!r}), Context())["statusCode"]
"""


@dataclass
class Probe:
    """One function's first request: the route, and the status its answer must have."""

    function: str
    method: str
    path: str
    route: str
    path_parameters: dict[str, str]
    body: Any = None
    expect: int = 200


def _seed(api: Any) -> dict[str, str]:
    """What the probes read: a registered customer with a card, an imported one, an import."""
    admin = {"role": "admin", "business": BUSINESS}
    card = "7000001"
    api.ok("POST", "/v1/card-batches", {"numbers": [card]}, **admin)
    registered = api.ok(
        "POST",
        "/v1/registrations",
        {"email": "cold@example.com", "first_name": "Cold", "card_number": card},
        **admin,
    )
    report = api.ok("POST", "/v1/imports", {"customers": [{"email": "imp@example.com"}]}, **admin)
    imported = api.ok("GET", "/v1/customers", query={"email": "imp@example.com"}, **admin)["items"][0]
    return {
        "customer": registered["customer_id"],
        "card": card,
        "import": report["import_id"],
        "imported": imported["customer_id"],
        "imported_version": str(imported["version"]),
    }


def _probes(seeded: dict[str, str]) -> list[Probe]:
    cid = seeded["customer"]
    return [
        Probe(
            "customers", "GET", f"/v1/customers/{cid}", "/v1/customers/{customer_id}", {"customer_id": cid}
        ),
        Probe(
            "customer_import",
            "GET",
            f"/v1/imports/{seeded['import']}",
            "/v1/imports/{import_id}",
            {"import_id": seeded["import"]},
        ),
        Probe("invitation", "GET", "/v1/settings/invitations", "/v1/settings/invitations", {}),
        Probe(
            "points",
            "GET",
            f"/v1/customers/{cid}/balance",
            "/v1/customers/{customer_id}/balance",
            {"customer_id": cid},
        ),
        # No GET route: its cheapest request, one conditional transaction (the answer to a change).
        Probe(
            "program_status",
            "PUT",
            f"/v1/customers/{seeded['imported']}/program-status",
            "/v1/customers/{customer_id}/program-status",
            {"customer_id": seeded["imported"]},
            {"status": "inactive", "reason": "cold start", "expected_version": 99},
            409,
        ),
        Probe("ranked_statuses", "GET", "/v1/status-definitions", "/v1/status-definitions", {}),
        Probe(
            "registration",
            "GET",
            f"/v1/cards/{seeded['card']}",
            "/v1/cards/{number}",
            {"number": seeded["card"]},
        ),
        Probe("webhooks", "GET", "/v1/webhooks", "/v1/webhooks", {}),
    ]


def _event(probe: Probe) -> str:
    from local.events import http_api_event
    from local.harness import claims

    event = http_api_event(
        probe.method,
        probe.path,
        route_path=probe.route,
        path_parameters=probe.path_parameters or None,
        body=probe.body,
        claims=claims("admin", BUSINESS),
    )
    return json.dumps(event)


def _run(body: str, env: dict[str, str]) -> tuple[float, Any]:
    best, answer = float("inf"), None
    for _ in range(RUNS):
        started = time.time()  # the process's start, as the caller sees it: spawn to answer
        data = last_json(run_python(_PROBE.format(body=body), env))
        best, answer = min(best, data["answered_at"] - started), data["answer"]
    return best, answer


def _base_env(endpoint: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")},
        "PYTHONPATH": layer_path(),
        "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_SERVICE_NAME": "loyalty",
        "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def _import_shares(body: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """Where a fresh process's imports go, by top-level package: the self time `python -X
    importtime` reports for each module, summed (fastest of the runs per module)."""
    best: dict[str, float] = {}
    for _ in range(3):
        out = run_python(_PROBE.format(body=body), env, "-X", "importtime")
        for line in out.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
                continue
            own, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
            best[name] = min(best.get(name, float("inf")), int(own) / 1e6)
    shares: dict[str, float] = {}
    for name, seconds in best.items():
        top = name.split(".")[0]
        shares[top] = shares.get(top, 0.0) + seconds
    return sorted(shares.items(), key=lambda kv: -kv[1])


def breakdown(function: str = "customers") -> list[Figure]:
    """Informational: the import time of one function and of the baseline, by package."""
    from local import template as tpl
    from local.harness import served_aws

    figures = []
    with moto_server() as endpoint, served_aws(endpoint, "cold") as aws:
        spec = next(s for s in tpl.functions(tpl.load(), aws.refs) if s.code_uri.name == function)
        env = {**_base_env(endpoint), **spec.environment, **lambda_environment(spec.code_uri)}
        # Unknown ids: the answer (404) does not matter, only what the process imports.
        unknown = dict.fromkeys(("customer", "card", "import", "imported", "imported_version"), "1")
        probe = next(p for p in _probes(unknown) if p.function == function)
        body = _FUNCTION.format(path=str(ROOT / "functions" / function / "app.py"), event=_event(probe))
        baseline = dict(_import_shares(_BASELINE.format(table=aws.table_name, pk="B#x"), env))
        for package, seconds in _import_shares(body, env)[:12]:
            extra = seconds - baseline.get(package, 0.0)
            figures.append(
                Figure(
                    f"import of {function}, {package} (baseline {baseline.get(package, 0.0) * 1000:.0f} ms)",
                    seconds * 1000,
                    "info",
                    None,
                    True,
                    f" ms ({extra * 1000:+.0f})",
                )
            )
    return figures


def measure() -> list[tuple[str, float, float, Any, int]]:
    """(function, candidate seconds, baseline seconds, answer status, expected status)."""
    from local import template as tpl
    from local.harness import Api, served_aws

    rows = []
    with moto_server() as endpoint, served_aws(endpoint, "cold") as aws:
        seeded = _seed(Api(aws))
        environments = {
            spec.code_uri.resolve(): spec.environment for spec in tpl.functions(tpl.load(), aws.refs)
        }
        base_env = _base_env(endpoint)
        baseline = _BASELINE.format(table=aws.table_name, pk=f"B#{BUSINESS}")
        for probe in _probes(seeded):
            folder = ROOT / "functions" / probe.function
            env = {**base_env, **environments[folder.resolve()], **lambda_environment(folder)}
            base_s, _ = _run(baseline, base_env)  # adjacent in time to the candidate
            body = _FUNCTION.format(path=str(folder / "app.py"), event=_event(probe))
            seconds, answer = _run(body, env)
            rows.append((probe.function, seconds, base_s, answer, probe.expect))
    return rows


def run() -> list[Figure]:
    figures = []
    for function, seconds, base_s, answer, expect in measure():
        ratio = seconds / base_s
        figures.append(
            Figure(
                f"first answer {function} ({answer}) vs bare boto3 first Query ({base_s * 1000:.0f} ms)",
                seconds * 1000,
                f"<= {TARGET}x",
                ratio,
                ratio <= TARGET and answer == expect,
                " ms",
            )
        )
    return figures + breakdown()
