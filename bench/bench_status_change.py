"""DynamoDB requests per program-status change, through the real handler on moto.

Target (issue 5): 1 request with `expected_version` (no read: the profile update is
conditioned on the version and on the statuses the event may start from, the audit
event is in the same transaction), at most 2 without (a consistent read, then the
change conditioned on what was read). Exclusion is reported too: one Query for the
customer's partition (profile, cards, assignments and the history whose reasons it
scrubs), one transaction, one Query for stored Idempotency-Key answers to purge.
Counted with RequestCounter over each call, averaged over REPEATS customers, all in one run.

    .venv/bin/python -m bench status_change
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import Figure, counted_stack

REPEATS = 5


def run() -> list[Figure]:
    with counted_stack("bench-status") as (aws, counter):
        from tests.conftest import Api

        api = Api(aws)
        serial = iter(range(10**6))

        def customer(*steps: str) -> dict[str, Any]:
            body = {"email": f"bench-{next(serial)}@example.com", "first_name": "Bench"}
            cid = api.ok("POST", "/v1/customers", body)["customer_id"]
            for step in steps:
                api.ok("PUT", f"/v1/customers/{cid}/program-status", {"status": step})
            return dict(api.ok("GET", f"/v1/customers/{cid}"))

        def measure(setup: Callable[[], dict[str, Any]], call: Callable[[dict[str, Any]], Any]) -> float:
            total = 0
            for _ in range(REPEATS):
                seen = setup()
                counter.reset()
                response = call(seen)
                total += counter.dynamodb()
                assert response.status == 200, response
            return total / REPEATS

        def put(target: str, with_version: bool) -> Callable[[dict[str, Any]], Any]:
            def call(seen: dict[str, Any]) -> Any:
                body: dict[str, Any] = {"status": target}
                if with_version:
                    body["expected_version"] = seen["version"]
                return api("PUT", f"/v1/customers/{seen['customer_id']}/program-status", body)

            return call

        def opt_out(seen: dict[str, Any]) -> Any:
            cid = seen["customer_id"]
            return api("POST", f"/v1/customers/{cid}/opt-out", {"expected_version": seen["version"]})

        def exclude(seen: dict[str, Any]) -> Any:
            cid = seen["customer_id"]
            return api("POST", f"/v1/customers/{cid}/exclusion", role="customer", sub=cid)

        cases: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], Any], int, int]] = [
            # (name, setup, call, minimum, target)
            (
                "disconnect active->inactive, expected_version",
                lambda: customer("active"),
                put("inactive", True),
                1,
                1,
            ),
            (
                "register inactive->active, expected_version",
                lambda: customer("active", "inactive"),
                put("active", True),
                1,
                1,
            ),
            (
                "reinvite inactive->pending, expected_version",
                lambda: customer("active", "inactive"),
                put("pending", True),
                1,
                1,
            ),
            ("invite imported->pending, expected_version", lambda: customer(), put("pending", True), 1, 1),
            ("opt-out active->inactive, expected_version", lambda: customer("active"), opt_out, 1, 1),
            (
                "disconnect active->inactive, no version",
                lambda: customer("active"),
                put("inactive", False),
                1,
                2,
            ),
            ("invite imported->pending, no version", lambda: customer(), put("pending", False), 1, 2),
            (
                "reinvite inactive->pending, no version",
                lambda: customer("active", "inactive"),
                put("pending", False),
                1,
                2,
            ),
            # The partition's Query, the transaction, and the purge of stored Idempotency-Key
            # answers: one Query per shard of the business's records (16) and of the partition they
            # were kept in before they were spread (1), sent at once (issue 18).
            ("exclusion (erase, suppress, audit)", lambda: customer("active"), exclude, 1, 2 + 17),
        ]
        figures: list[Figure] = []
        for name, setup, call, minimum, target in cases:
            measured = measure(setup, call)
            figures.append(
                Figure(
                    name=f"DynamoDB requests per {name}",
                    measured=measured,
                    target=f"<= {target} (minimum {minimum})",
                    ratio=measured / minimum,
                    ok=measured <= target,
                )
            )
        return figures
