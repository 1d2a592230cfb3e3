"""Points (issue 15): DynamoDB requests per command and what the scheduled run reads.

- Requests per balance read, earn and redeem, through the points function's handler on moto
  (every request counted with botocore's hooks, Powertools' included).
- Earn for a customer holding 1,000 lots against one holding 1: the wallet is one item, so
  the count must not move; the wallet item's size is printed against DynamoDB's 400 KB.
- The expiry run over 20,000 and 2,000 customers with 200 lots past their day: items read
  (from the responses: ScannedCount, items returned) per lot expired.

    .venv/bin/python -m bench points
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bench.common import (
    Figure,
    ItemsRead,
    counted_stack,
    measured_run,
    scheduled_run_figures,
    seed,
)
from tests.support.points import purchase

SETTINGS = {
    "points_per_unit": 1,
    "rounding": "down",
    "pending_days": 0,
    "expiry": {"policy": "days", "value": 365},
    "return_policy": "allow_debt",
    "reminder_days": [30, 7],
    "time_zone": "Europe/Paris",
}
EXPIRING = 200
SIZES = (20_000, 2_000)
BIG_WALLET = 1_000


def _purchase(external_id: str, amount: int = 10) -> dict[str, Any]:
    return purchase(external_id, amount)


def _customer(business_id: str, cid: str, at: str) -> dict[str, Any]:
    from loyalty.repository.customers import with_index_keys

    return with_index_keys(
        {  # type: ignore[typeddict-item]
            "business_id": business_id,
            "customer_id": cid,
            "program_status": "active",
            "email": f"{cid}@example.com",
            "attributes": {},
            "statuses": {},
            "cards": [],
            "version": 1,
            "created_at": at,
            "updated_at": at,
        }
    )


def _wallet(business_id: str, cid: str, earned: Any, lots: int = 1) -> dict[str, Any]:
    """A wallet whose `lots` lots were earned on consecutive days from `earned`, as the
    points commands would have left it, with its place in the due index."""
    from loyalty.domain import points
    from loyalty.domain.clock import iso
    from loyalty.repository import points as repo

    policy = points.Policy.of(
        {**SETTINGS, "expiry": {"policy": "days", "value": 3650}} if lots > 1 else SETTINGS
    )
    wallet = points.empty_wallet(business_id, cid)
    wallet["lots"] = []
    for n in range(lots):
        at = iso(earned + timedelta(days=n))
        wallet["lots"].append(
            {
                "lot_id": f"L{n + 1:09d}",
                "points": 10,
                "remaining": 10,
                "earned_at": at,
                "available_at": at,
                "expires_at": points.expiry_of(at, policy),
                "source": "earn",
                "ref": f"pos-{n}",
            }
        )
    wallet.update(seq=lots, version=lots, lifetime_earned=10 * lots, time_zone=policy.time_zone)
    return repo.wallet_item(wallet, points.next_due(wallet, policy))


def _commands() -> list[Figure]:
    from loyalty.domain.clock import now

    with counted_stack("bench-points") as (aws, counter):
        from local.harness import Api

        api = Api(aws)
        api.ok("PUT", "/v1/settings/points", SETTINGS, role="admin")
        small = api.ok("POST", "/v1/registrations", {"email": "one@example.com"})["customer_id"]
        big = api.ok("POST", "/v1/registrations", {"email": "many@example.com"})["customer_id"]
        api.ok("POST", f"/v1/customers/{small}/purchases", _purchase("seed-1", 100), role="service")
        seed(aws.table_name, [_wallet("biz-1", big, now() - timedelta(days=10), BIG_WALLET)])

        def requests(method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> int:
            counter.reset()
            api.ok(method, path, body, **kw)
            return counter.dynamodb()

        read = requests("GET", f"/v1/customers/{small}/balance")
        earn_small = requests("POST", f"/v1/customers/{small}/purchases", _purchase("pos-1"), role="service")
        earn_big = requests("POST", f"/v1/customers/{big}/purchases", _purchase("pos-2"), role="service")
        redeem = requests(
            "POST", f"/v1/customers/{small}/redemptions", {"external_id": "r1", "points": 5, "reward": "x"}
        )
        lots = len(api.ok("GET", f"/v1/customers/{big}/lots", query={"limit": 100})["items"])
        assert lots == 100, lots  # the big wallet kept its lots apart (distinct expiry days)
        from loyalty.repository import points as repo

        stored = repo.get_wallet("biz-1", big)
        assert stored is not None and len(stored["lots"]) == BIG_WALLET + 1
        size_kb = len(json.dumps(repo.wallet_item(stored, None))) / 1024
    return [
        Figure("points: DynamoDB requests per balance read", read, "<= 1", read / 1, read <= 1),
        Figure("points: DynamoDB requests per earn", earn_small, "<= 2", earn_small / 2, earn_small <= 2),
        Figure("points: DynamoDB requests per redeem", redeem, "<= 2", redeem / 2, redeem <= 2),
        Figure(
            f"points: earn requests, {BIG_WALLET:,} lots held vs 1",
            earn_big / earn_small,
            "== 1 (same requests)",
            earn_big / earn_small,
            earn_big == earn_small,
            "x",
        ),
        Figure(
            f"points: wallet item with {BIG_WALLET + 1:,} lots (JSON size, of DynamoDB's 400 KB)",
            size_kb,
            "info (folds above 400 lots)",
            size_kb / 400,
            size_kb < 400,
            " KB",
        ),
    ]


def _run_at(size: int) -> dict[str, int]:
    """`size` customers with wallets; EXPIRING of them hold a lot past its day."""
    from loyalty.domain.clock import iso, now

    with counted_stack(f"bench-points-{size}") as (aws, counter):
        from local.harness import Api

        items_read = ItemsRead(counter)
        try:
            Api(aws).ok("PUT", "/v1/settings/points", SETTINGS, role="admin", business="bench")
            at = now()
            items: list[dict[str, Any]] = []
            for i in range(size):
                cid = f"c{i:06d}"
                earned = at - timedelta(days=400 if i < EXPIRING else 20)
                items += [_customer("bench", cid, iso(earned)), _wallet("bench", cid, earned)]
            seed(aws.table_name, items)
            report, read, requests = measured_run(
                aws.specs["PointsFunction"], {"run": "points"}, counter, items_read
            )
            return {
                "expired": report["expired_lots"],
                "wallets": report["wallets"],
                "items_read": read,
                "requests": requests,
            }
        finally:
            items_read.close()


def run() -> list[Figure]:
    figures = _commands()
    for size in SIZES:
        m = _run_at(size)
        right = m["expired"] == EXPIRING == m["wallets"]
        figures += scheduled_run_figures(
            "points run",
            size,
            ("lots expired", "lot expired"),
            m["expired"],
            EXPIRING,
            right,
            m["items_read"],
            m["requests"],
        )
    return figures
