"""Keyed hashes of an excluded person's identifiers: enough to suppress, nothing to read back."""

from __future__ import annotations

import hashlib
import hmac


def identifier_hash(secret: str, business_id: str, kind: str, value: str) -> str:
    message = f"{business_id}\x1f{kind}\x1f{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
