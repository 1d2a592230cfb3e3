"""The attribute-value codec (loyalty.repository.codec) agrees with boto3's, which it replaces
so that functions need not import boto3. Pure code, no AWS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from loyalty.repository.codec import from_attribute, to_attribute

numbers = st.integers(min_value=-(10**37), max_value=10**37) | st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=20) | st.binary(max_size=10)
values = st.recursive(
    scalars
    | st.frozensets(st.text(max_size=5), min_size=1, max_size=4)
    | st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def normalised(attribute: Any) -> Any:
    """Sets are unordered in both codecs; boto3 reads binaries as its Binary wrapper."""
    if isinstance(attribute, dict):
        return {
            k: sorted(map(str, v)) if k in ("SS", "NS", "BS") else normalised(v) for k, v in attribute.items()
        }
    if isinstance(attribute, list):
        return [normalised(v) for v in attribute]
    return attribute


@given(values)
def test_writing_and_reading_agree_with_boto3(value: Any) -> None:
    # Given any storable value / When both codecs write it / Then they write the same
    ours, theirs = to_attribute(value), TypeSerializer().serialize(value)
    assert normalised(ours) == normalised(theirs)
    # And both read it back the same
    read, boto3_read = from_attribute(theirs), TypeDeserializer().deserialize(theirs)
    assert repr(type(read)) == repr(type(boto3_read)) or isinstance(value, bytes | bytearray)
    if not isinstance(value, bytes | bytearray | frozenset) and not _holds_binary(value):
        assert read == boto3_read


def _holds_binary(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        return True
    if isinstance(value, dict):
        return any(_holds_binary(v) for v in value.values())
    if isinstance(value, list | tuple | frozenset | set):
        return any(_holds_binary(v) for v in value)
    return False


@pytest.mark.parametrize(
    "value", [1.5, Decimal("NaN"), Decimal("Infinity"), object(), {1, "a"}, Decimal("1e200")]
)
def test_what_dynamodb_cannot_store_is_refused(value: Any) -> None:
    with pytest.raises(Exception):  # noqa: B017 - boto3 raises TypeError or a decimal trap alike
        to_attribute(value)
