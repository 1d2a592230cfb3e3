"""Keyed hashes of an excluded person's identifiers: enough to suppress, nothing to read back."""

from __future__ import annotations

import hashlib
import hmac

from loyalty.config import settings


def identifier_hash(business_id: str, kind: str, value: str) -> str:
    message = f"{business_id}\x1f{kind}\x1f{value}".encode()
    return hmac.new(settings().suppression_key.encode(), message, hashlib.sha256).hexdigest()


def identifier_hashes(business_id: str, identifiers: dict[str, str | None]) -> list[str]:
    return [identifier_hash(business_id, kind, value) for kind, value in identifiers.items() if value]
