"""Ids that enter a DynamoDB key (docs/design.md#trust-and-identity).

Keys join their parts with `#`, so an id holding `#` could name another tenant's item
(`acme#C#victim`). Every id from a token, a path or a body must match ID_PATTERN: letters,
digits and `-_.|:@` (identity providers' subjects such as `auth0|5f7c...` pass), bounded
length, never the separator.
"""

from __future__ import annotations

import re

ID_PATTERN = r"^[A-Za-z0-9_.|:@-]{1,128}$"
_ID = re.compile(ID_PATTERN)


def is_safe_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None
