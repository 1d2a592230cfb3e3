"""Tiers (issue 16): what an upgrade, the retention check and a dry-run re-evaluation cost.

- A purchase that upgrades a tier, through the points function: still one TransactWriteItems
  (and one BatchGetItem before it).
- The retention check over 20,000 and 2,000 customers with 200 due (half keep their tier,
  half go one down): items read per customer due (ScannedCount of queries, items returned by
  reads), from the responses of one run per size.
- A dry run of a changed ladder over 10,000 customers: DynamoDB requests per customer.

    .venv/bin/python -m bench tiers
"""

from __future__ import annotations

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
from tests.support.tiers import LADDER, POINTS_SETTINGS

DUE = 200
SIZES = (20_000, 2_000)
DRY_RUN_SIZE = 10_000
DRY_RUN_TARGET = 0.1


def _business(api: Any, business: str) -> None:
    api.ok("PUT", "/v1/settings/points", POINTS_SETTINGS, role="admin", business=business)
    for rank, code in enumerate(("gold", "silver", "bronze"), start=1):
        body = {"code": code, "name": code.title(), "rank": rank, "customer_facing": True}
        api.ok("POST", "/v1/status-definitions", body, role="admin", business=business)
    api.ok("PUT", "/v1/tiers", LADDER, role="admin", business=business)


def _customer(business: str, i: int, spend: int, reached: Any, code: str, spent: Any) -> list[dict[str, Any]]:
    """A gold (or silver) customer's profile and tier record, as purchases would have left them."""
    from loyalty.domain.clock import iso
    from loyalty.repository import tiers as tiers_repo
    from loyalty.repository.customers import with_index_keys

    cid = f"c{i:06d}"
    at = iso(reached)
    profile = with_index_keys(
        {  # type: ignore[typeddict-item]
            "business_id": business,
            "customer_id": cid,
            "program_status": "active",
            "email": f"{cid}@example.com",
            "attributes": {},
            "statuses": {code: {"source": "tier", "assigned_by": "bench", "assigned_at": at}},
            "status_order": [code],
            "best_status": code,
            "cards": [],
            "version": 3,
            "created_at": at,
            "updated_at": at,
        }
    )
    until = iso(reached + timedelta(days=365))
    record = {
        "business_id": business,
        "customer_id": cid,
        "months": {iso(spent)[:7]: {"spend": str(spend), "points": spend}},
        "tier": {"code": code, "reached_at": at, "retained_until": until},
        "manual": None,
        "effective": code,
        "profile_version": 3,
        "status_order": [code],
        "holds": True,
        "program_status": "active",
        "seq": 1,
        "version": 1,
    }
    return [profile, tiers_repo.tier_item(record)]  # type: ignore[arg-type]


def _upgrade() -> list[Figure]:
    with counted_stack("bench-tiers") as (aws, counter):
        from local.harness import Api

        api = Api(aws)
        _business(api, "biz-1")
        cid = api.ok("POST", "/v1/registrations", {"email": "up@example.com"})["customer_id"]
        purchase = {"occurred_at": "2026-11-30T10:00:00Z", "currency": "EUR"}
        first = {**purchase, "external_id": "p1", "amount": 450, "eligible_amount": 450}
        api.ok("POST", f"/v1/customers/{cid}/purchases", first, role="service")
        counter.reset()
        second = {**purchase, "external_id": "p2", "amount": 600, "eligible_amount": 600}
        answer = api.ok("POST", f"/v1/customers/{cid}/purchases", second, role="service")
        assert answer["tier"] == {"code": "gold", "move": "upgraded"}, answer
        writes = counter.calls["dynamodb.TransactWriteItems"]
        total = counter.dynamodb()
    return [
        Figure("tiers: TransactWriteItems for a purchase that upgrades", writes, "== 1", writes, writes == 1),
        Figure("tiers: DynamoDB requests for that purchase", total, "info (1 read + 1 write)", None, True),
    ]


def _check_at(size: int) -> dict[str, int]:
    from loyalty.domain.clock import now

    with counted_stack(f"bench-tiers-{size}") as (aws, counter):
        from local.harness import Api

        items_read = ItemsRead(counter)
        try:
            _business(Api(aws), "bench")
            at = now()
            items: list[dict[str, Any]] = []
            for i in range(size):
                due = i < DUE
                reached = at - timedelta(days=366 if due else 100)
                spend = 900 if i % 2 else 300  # half keep gold, half go one down
                items += _customer("bench", i, spend, reached, "gold", at - timedelta(days=60))
            seed(aws.table_name, items)
            event = {"run": "tier_check"}
            report, read, requests = measured_run(aws.specs["StatusesFunction"], event, counter, items_read)
            return {
                "checked": report["checked"],
                "retained": report["retained"],
                "downgraded": report["downgraded"],
                "profiles_read": report["profiles_read"],
                "items_read": read,
                "requests": requests,
            }
        finally:
            items_read.close()


def _dry_run() -> dict[str, int]:
    from loyalty.domain.clock import now

    with counted_stack("bench-tiers-dry") as (aws, counter):
        from local.harness import Api

        api = Api(aws)
        _business(api, "bench")
        at = now() - timedelta(days=100)
        items: list[dict[str, Any]] = []
        for i in range(DRY_RUN_SIZE):
            items += _customer("bench", i, 600 + i % 1000, at, "silver", at + timedelta(days=10))
        seed(aws.table_name, items)
        raised = {
            **LADDER,
            "tiers": [
                {"code": "bronze", "attain": 0, "maintain": 0},
                {"code": "silver", "attain": 700, "maintain": 650},
                {"code": "gold", "attain": 1200, "maintain": 1000},
            ],
        }
        api.ok("PUT", "/v1/tiers", raised, role="admin", business="bench")
        counter.reset()
        report = api.ok("POST", "/v1/tiers/evaluations", {"dry_run": True}, role="admin", business="bench")
        return {
            "customers": report["customers"],
            "moves": report["upgrades"] + report["downgrades"],
            "requests": counter.dynamodb(),
        }


def run() -> list[Figure]:
    figures = _upgrade()
    for size in SIZES:
        m = _check_at(size)
        right = m["checked"] == DUE and m["retained"] == m["downgraded"] == DUE // 2
        figures += scheduled_run_figures(
            "tier check",
            size,
            ("customers checked", "customer due"),
            m["checked"],
            DUE,
            right,
            m["items_read"],
            m["requests"],
        )
    d = _dry_run()
    per = d["requests"] / max(d["customers"], 1)
    figures.append(
        Figure(
            f"tiers dry run of a changed ladder, {DRY_RUN_SIZE:,} customers: requests per customer "
            f"({d['moves']:,} would move)",
            per,
            f"<= {DRY_RUN_TARGET}",
            per / DRY_RUN_TARGET,
            per <= DRY_RUN_TARGET and d["customers"] == DRY_RUN_SIZE,
        )
    )
    return figures
