"""Request bodies read within bounds (docs/design.md#errors): hostile JSON is a 4xx, never a 500.

Python's JSON reader accepts NaN and Infinity, integers of thousands of digits (then raises
deep inside), and nesting deep enough to exhaust the stack; DynamoDB stores neither NaN nor
numbers beyond 38 digits. The resolver reads every body through `read_json`.
"""

from __future__ import annotations

import json
from typing import Any

from loyalty.domain.errors import BadRequest, ValidationFailed

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40  # DynamoDB keeps 38 significant digits; a sign and an exponent fit too


class BodyTooDeep(BadRequest):
    code = "body_too_deep"


def _refuse_number(text: str) -> ValidationFailed:
    shown = text if len(text) <= 20 else text[:20] + "..."
    message = f"the number {shown} cannot be stored (at most 38 digits, finite)"
    return ValidationFailed(message, [{"field": "body", "message": message, "type": "number_out_of_range"}])


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _refuse_number(text)
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _refuse_number(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _refuse_number(text)
    return value


def _constant(text: str) -> Any:
    raise _refuse_number(text)  # NaN, Infinity, -Infinity


def _depth_ok(value: Any) -> bool:
    """No branch deeper than MAX_DEPTH (iterative: a deep value cannot blow the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def read_json(body: str) -> Any:
    """The body as JSON, refused when it could not be stored or nests too deeply."""
    try:
        value = json.loads(body, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as exc:
        raise BodyTooDeep(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    if not _depth_ok(value):
        raise BodyTooDeep(f"the body nests deeper than {MAX_DEPTH} levels")
    return value
