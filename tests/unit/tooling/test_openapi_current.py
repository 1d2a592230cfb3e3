"""openapi.json is generated from the handlers' routers (`make openapi`) and must be current."""

from __future__ import annotations

import json
from typing import Any

from local.openapi import TITLE, build_schema, render
from local.template import ROOT

COMMITTED = ROOT / "openapi.json"


def test_openapi_json_matches_the_handlers() -> None:
    # Given the committed document
    assert COMMITTED.exists(), "openapi.json is missing: run `make openapi`"
    committed = json.loads(COMMITTED.read_text())

    # When it is regenerated from the function modules' routers
    generated = json.loads(render(build_schema()))

    # Then they are the same document (compared as data, so formatting cannot matter)
    assert generated == committed, (
        f"openapi.json is stale: run `make openapi` (first differences: {_differences(committed, generated)})"
    )


def _differences(old: Any, new: Any, where: str = "", found: list[str] | None = None) -> list[str]:
    """Up to 5 JSON pointers where two documents differ (for a readable failure)."""
    found = [] if found is None else found
    if len(found) >= 5:
        return found
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                found.append(f"{where}/{key} ({'added' if key in new else 'removed'})")
            else:
                _differences(old[key], new[key], f"{where}/{key}", found)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _differences(a, b, f"{where}/{index}", found)
    elif old != new:
        found.append(where or "/")
    return found[:5]


def test_the_document_declares_jwt_bearer_auth_and_public_invitation_answers() -> None:
    # When the document is built
    schema = build_schema()

    # Then it is titled, secured by a JWT bearer scheme by default...
    assert schema["info"]["title"] == TITLE
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert schema["security"] == [{"bearerAuth": []}]
    # ...and a route with `Authorizer: NONE` in the template needs no token
    accept = schema["paths"].get("/v1/invitations/{token}/accept", {}).get("post")
    if accept is not None:
        assert accept["security"] == []
    assert schema["paths"]["/v1/customers"]["post"].get("security") is None
