"""Stored answers of Idempotency-Key requests (Powertools records, in the business's shards).

They can quote a customer's personal data for up to their 24 h expiry, so an exclusion
purges the records that mention the customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from loyalty.repository import keys
from loyalty.repository.base import Transaction, parallel, query_all


def purge_for_customer(business_id: str, customer_id: str, identifiers: Iterable[str] = ()) -> int:
    """Delete this business's stored answers that mention the customer's id or any of their
    identifiers (an answer may quote an e-mail without the id); return how many."""
    needles = list(dict.fromkeys([customer_id, *(v for v in identifiers if v and len(v) >= 3)]))
    mentions = " OR ".join(f"contains(#d, :v{i})" for i in range(len(needles)))

    def mentioning(pk: str) -> list[dict[str, Any]]:
        values: dict[str, Any] = {":pk": pk, **{f":v{i}": v for i, v in enumerate(needles)}}
        return list(
            query_all("PK = :pk", values, filter_expression=mentions, names={"#d": "data"}, consistent=True)
        )

    # Every shard at once, and the partition records lived in before they were spread.
    pks = [*keys.idempotency_pks(business_id), keys.idempotency_unsharded_pk(business_id)]
    found = [record for shard in parallel([partial(mentioning, pk) for pk in pks]) for record in shard]
    # Small transactions so one failure leaves the rest done; a repeat finds only what is left.
    for start in range(0, len(found), 25):
        tx = Transaction()
        for record in found[start : start + 25]:
            tx.delete({"PK": record["PK"], "SK": record["SK"]})
        tx.commit()
    return len(found)
