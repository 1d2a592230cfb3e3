"""The business's status catalog: every status definition in one versioned item.

One item makes re-ranking a single conditional write (atomic, rank uniqueness by
construction) and lets a profile read resolve names and ranks with one GetItem.
"""

from __future__ import annotations

from typing import Any

from loyalty import keys
from loyalty.repository.base import get_item


def get_catalog(business_id: str) -> dict[str, Any]:
    """`{"definitions": {code: {...}}, "version": n}`; an empty catalog when none is stored."""
    item = get_item(keys.status_catalog_key(business_id))
    if not item:
        return {"definitions": {}, "version": 0}
    return {"definitions": item.get("definitions", {}), "version": item.get("version", 0)}
