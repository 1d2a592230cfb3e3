"""Registration with a card, and card packing: DynamoDB requests, measured in one run.

- Registering a customer with a packed card merges the card's virtual owner: that must
  be exactly one TransactWriteItems (the unit of work), plus the few reads deciding it.
- Packing 10,000 cards writes each card with its `new` owner and audit event atomically,
  33 cards to a 100-item TransactWriteItems, after one BatchGetItem per 100 numbers for
  duplicates: DynamoDB requests per card must stay <= 0.05.

    PYTHONPATH=shared .venv/bin/python -m bench registration
"""

from __future__ import annotations

import os

from bench.common import Figure, counted_stack

PACKED = int(os.environ.get("BENCH_PACKED_CARDS", "10000"))
PER_CARD_TARGET = 0.05


def run() -> list[Figure]:
    from local.harness import Api, fast_moto_transactions

    fast_moto_transactions()  # moto's whole-table copy per transaction is not what we measure
    figures: list[Figure] = []
    with counted_stack("bench-registration") as (aws, counter):
        api = Api(aws)
        # Packing: one request of 10,000 generated numbers.
        counter.reset()
        report = api.ok(
            "POST",
            "/v1/card-batches",
            {"prefix": "4", "start": 0, "count": PACKED, "luhn": True},
            role="admin",
        )
        assert report["created"] == PACKED, report["errors"][:3]
        requests = counter.dynamodb()
        per_card = requests / PACKED
        figures.append(
            Figure(
                f"pack {PACKED} cards: DynamoDB requests per card ({requests} requests)",
                per_card,
                f"<= {PER_CARD_TARGET}",
                per_card / PER_CARD_TARGET,
                per_card <= PER_CARD_TARGET,
            )
        )
        # Registration binding one of those cards (virtual owner merged in the same write).
        number = report["cards"][0]["number"]
        counter.reset()
        customer = api.ok("POST", "/v1/registrations", {"email": "bench@example.com", "card_number": number})
        assert customer["cards"] == [{"number": number, "state": "activated"}]
        transactions = counter.calls["dynamodb.TransactWriteItems"]
        figures.append(
            Figure(
                "register with card: TransactWriteItems per registration",
                transactions,
                "== 1",
                transactions / 1,
                transactions == 1,
            )
        )
        total = counter.dynamodb()
        writes = sum(n for op, n in counter.calls.items() if op.startswith("dynamodb.") and "Write" in op)
        figures.append(
            Figure(
                f"register with card: DynamoDB requests in all ({total - writes} reads + {writes} write)",
                total,
                "reads + 1 write",
                None,
                writes == 1,
            )
        )
    return figures
