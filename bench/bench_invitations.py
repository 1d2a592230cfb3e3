"""Scheduled invitation run: items read per customer contacted, at two table sizes.

The run reads the sparse invitation-due index (GSI3) by key condition only, so what it
reads should track what it sends, not how many customers the table holds. Items read are
taken from the responses themselves (ScannedCount of Query/Scan, items returned by
GetItem/BatchGetItem/TransactGetItems), measured in one run per table size.

    .venv/bin/python -m bench invitations
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.common import Figure, ItemsRead, counted_stack, moto_without_table_snapshots, seed

IMPORTED, DUE_REMINDERS, LATER_REMINDERS = 200, 100, 100
SIZES = (20_000, 2_000)
TARGET = 1.2


def _profiles(business_id: str, size: int) -> list[dict[str, Any]]:
    """`size` customers: 200 imported, 100 due a reminder, 100 reminded later, the rest active."""
    from loyalty.domain.clock import iso, now

    at = now()
    created = iso(at - timedelta(days=30))
    profiles: list[dict[str, Any]] = []
    for i in range(size):
        base: dict[str, Any] = {
            "business_id": business_id,
            "customer_id": f"c{i:06d}",
            "email": f"c{i}@example.com",
            "first_name": f"Name{i}",
            "attributes": {},
            "statuses": {},
            "cards": [],
            "invitation_count": 0,
            "version": 1,
            "created_at": created,
            "updated_at": created,
        }
        if i < IMPORTED:
            base["program_status"] = "imported"
        elif i < IMPORTED + DUE_REMINDERS + LATER_REMINDERS:
            days_ago = 8 if i < IMPORTED + DUE_REMINDERS else 2
            sent = at - timedelta(days=days_ago)
            base.update(
                program_status="pending",
                invited_at=iso(sent),
                last_invited_at=iso(sent),
                invitation_count=1,
                reminders_sent=0,
                invite_due_at=iso(sent + timedelta(days=7)),
            )
        else:
            base["program_status"] = "active"
        profiles.append(base)
    return profiles


def _measure(size: int) -> dict[str, float]:
    from moto.ses.models import ses_backends

    from local.runtime import invoke
    from loyalty.repository.customers import with_index_keys

    with counted_stack(f"bench-inv-{size}") as (aws, counter):
        from tests.conftest import Api

        items_read = ItemsRead(counter)
        try:
            api = Api(aws)
            settings = {"enabled": True, "batch_size": 1000, "reminder_after_days": 7, "max_reminders": 2}
            api.ok("PUT", "/v1/settings/invitations", settings, role="admin", business="bench")
            seed(aws.table_name, [with_index_keys(p) for p in _profiles("bench", size)])
            spec = aws.specs["InvitationFunction"]
            counter.reset()
            items_read.reset()
            with moto_without_table_snapshots():
                report = invoke(spec, {"run": "invitations"})
                first = {
                    "contacted": report["invited"] + report["reminded"],
                    "sent": len(ses_backends["123456789012"]["us-east-1"].sent_messages),
                    "items_read": items_read.total(),
                    "ddb_requests": counter.dynamodb(),
                }
                items_read.reset()
                again = invoke(spec, {"run": "invitations"})
            assert report["skipped"] == report["failed"] == again["skipped"] == 0, (report, again)
            first["second_run_contacted"] = again["invited"] + again["reminded"]
            first["second_run_items_read"] = items_read.total()
            return first
        finally:
            items_read.close()


def run() -> list[Figure]:
    figures: list[Figure] = []
    per_contact: dict[int, float] = {}
    for size in SIZES:
        m = _measure(size)
        expected = IMPORTED + DUE_REMINDERS
        ratio = m["items_read"] / max(m["contacted"], 1)
        per_contact[size] = ratio
        figures.append(
            Figure(
                f"invitation run, table of {size:,}: customers contacted (e-mails sent)",
                m["contacted"],
                f"== {expected} (200 imported + 100 due)",
                m["contacted"] / expected,
                m["contacted"] == expected == m["sent"],
            )
        )
        figures.append(
            Figure(
                f"invitation run, table of {size:,}: items read per customer contacted",
                ratio,
                f"<= {TARGET}",
                ratio / TARGET,
                ratio <= TARGET,
                "x",
            )
        )
        figures.append(
            Figure(
                f"invitation run, table of {size:,}: DynamoDB requests per customer contacted",
                m["ddb_requests"] / max(m["contacted"], 1),
                "info (1 claim transaction each + index pages)",
                None,
                True,
            )
        )
        figures.append(
            Figure(
                f"second run right after, table of {size:,}: e-mails sent / items read",
                m["second_run_contacted"],
                "0 sent (nothing due twice)",
                None,
                m["second_run_contacted"] == 0,
                f" sent, {int(m['second_run_items_read'])} items read",
            )
        )
    big, small = per_contact[SIZES[0]], per_contact[SIZES[1]]
    figures.append(
        Figure(
            "items read per contact, 20,000-customer table / 2,000-customer table",
            big / small,
            "~1 (independent of table size)",
            big / small,
            abs(big / small - 1) <= 0.05,
            "x",
        )
    )
    return figures
