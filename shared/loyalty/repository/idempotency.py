"""Stored answers of Idempotency-Key requests (Powertools records, one partition per business).

They can quote a customer's personal data for up to their 24 h expiry, so an exclusion
purges the records that mention the customer.
"""

from __future__ import annotations

from loyalty.repository import keys
from loyalty.repository.base import Transaction, query_all


def purge_for_customer(business_id: str, customer_id: str) -> int:
    """Delete this business's stored answers that mention `customer_id`; return how many."""
    pk = keys.idempotency_pk(f"http#{business_id}")
    found = list(
        query_all(
            "PK = :pk",
            {":pk": pk, ":cid": customer_id},
            filter_expression="contains(#d, :cid)",
            names={"#d": "data"},
            consistent=True,
        )
    )
    # Small transactions so one failure leaves the rest done; a repeat finds only what is left.
    for start in range(0, len(found), 25):
        tx = Transaction()
        for record in found[start : start + 25]:
            tx.delete({"PK": record["PK"], "SK": record["SK"]})
        tx.commit()
    return len(found)
