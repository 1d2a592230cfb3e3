"""DynamoDB's attribute-value format ({"S": ...}, {"N": ...}, {"M": {...}}), both ways.

boto3's TypeSerializer and TypeDeserializer do the same, but importing them imports all of
boto3 (its session, resources and s3transfer), which no function otherwise needs: the layer
talks to AWS through botocore (loyalty.adapters.aws). The rules are boto3's, number context
included; tests/unit/repository/test_codec.py checks both agree on every type.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# What DynamoDB stores exactly: 38 significant digits, exponents -130..125 (boto3's context).
DYNAMODB_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "NaN", "-Infinity", "sNaN", "-NaN"):
        raise TypeError("Infinity and NaN are not stored")
    return number


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def to_attribute(value: Any) -> dict[str, Any]:
    """One Python value as an attribute value (float is refused, as by boto3: use Decimal)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(_is_number(v) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, bytes | bytearray) for v in value):
            return {"BS": [bytes(v) for v in value]}
        raise TypeError("a set holds strings, numbers or bytes, one kind only")
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    raise TypeError(f"{type(value).__name__} cannot be stored in DynamoDB")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """One attribute value as Python (numbers as Decimal, as boto3 reads them)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(v) for v in value}
    if kind == "BS":
        return {bytes(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {kind}")
