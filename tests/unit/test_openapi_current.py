"""openapi.json is generated from the handlers' routers (`make openapi`) and must be current."""

from __future__ import annotations

import json

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
    stale_paths = sorted(set(generated["paths"]) ^ set(committed["paths"]))
    assert generated == committed, (
        f"openapi.json is stale (paths differing: {stale_paths}): run `make openapi`"
    )


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
