"""Repository plumbing without AWS (loyalty.repository.base): cursors."""

from __future__ import annotations

import base64
import json

import pytest

from loyalty.domain.errors import BadRequest
from loyalty.repository.base import decode_cursor, encode_cursor

KEY = {"PK": {"S": "B#b1#NAME"}, "SK": {"S": "PROFILE"}, "GSI1SK": {"S": "ann lee#c1"}}


def test_a_cursor_round_trips_for_its_own_list_only() -> None:
    # Given a cursor made for one list
    cursor = encode_cursor(KEY, "B#b1#NAME")
    # When it is read back for that list / Then it names the same key
    assert decode_cursor(cursor, "B#b1#NAME") == KEY
    # And for another list (or business) it is refused
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "B#b2#NAME")


def test_a_cursor_carries_no_readable_key() -> None:
    # When a page ends on a customer named Ann Lee / Then the cursor does not say so
    cursor = encode_cursor(KEY, "B#b1#NAME")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"ann" not in raw and b"PROFILE" not in raw


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!!",
        "",
        "AAAA",
        base64.urlsafe_b64encode(json.dumps(KEY).encode()).decode(),  # the old, unsealed form
        base64.urlsafe_b64encode(b"\x00" * 64).decode(),
    ],
)
def test_any_cursor_this_service_did_not_make_is_a_400(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "B#b1#NAME")


def test_a_tampered_cursor_is_refused() -> None:
    cursor = encode_cursor(KEY, "B#b1#NAME")
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    with pytest.raises(BadRequest):
        decode_cursor(flipped, "B#b1#NAME")
