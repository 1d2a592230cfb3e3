"""Keyed digests and per-purpose keys from the service's one secret (SUPPRESSION_KEY).

One secret to deploy, one key per purpose: suppression hashes, card secrets and cursor
encryption never share key material (HMAC-SHA256 as the key-derivation function).
"""

from __future__ import annotations

import hashlib
import hmac


def derive_key(secret: str, purpose: str) -> bytes:
    """32 bytes for `purpose`, derived from the service secret."""
    return hmac.new(secret.encode(), f"loyalty/{purpose}".encode(), hashlib.sha256).digest()


def keyed_digest(secret: str, purpose: str, *parts: str) -> str:
    """A hex HMAC of `parts` under the key for `purpose`: comparable, not reversible."""
    message = "\x1f".join(parts).encode()
    return hmac.new(derive_key(secret, purpose), message, hashlib.sha256).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
