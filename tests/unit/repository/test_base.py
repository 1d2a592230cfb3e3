"""Repository plumbing without AWS (loyalty.repository.base): cursors."""

from __future__ import annotations

import pytest

from loyalty.domain.errors import BadRequest
from loyalty.repository.base import decode_cursor, encode_cursor


def test_cursor_round_trip_and_tampering() -> None:
    key = {"PK": {"S": "B#b1#C#c1"}, "SK": {"S": "Z#EVT#0000000003"}}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, "B#b1#C#c1") == key
    # A cursor of another list (or business) is refused
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "B#b2#C#c1")
    with pytest.raises(BadRequest):
        decode_cursor("not-a-cursor!!")
