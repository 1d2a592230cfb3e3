"""Every route the template declares refuses callers it must refuse (issue 9, security).

Driven by template.yaml, so a route added later is covered without editing this file.
"""

from __future__ import annotations

import re

import pytest

from local import template as tpl
from tests.support import Api

SPECS = tpl.functions(tpl.load())
ROUTES = [(spec, route) for spec in SPECS for route in spec.http]
AUTHORIZED = [(spec, route) for spec, route in ROUTES if route.authorizer]
AUTHORIZED_IDS = [f"{route.method} {route.path}" for _, route in AUTHORIZED]


def _concrete(path: str) -> str:
    # Any value works for path parameters: the auth check comes before any lookup.
    return re.sub(r"\{(\w+)\+?\}", lambda m: f"sample-{m.group(1)}", path)


@pytest.mark.parametrize(("spec", "route"), AUTHORIZED, ids=AUTHORIZED_IDS)
def test_authorized_routes_refuse_a_request_without_token(
    api: Api, spec: tpl.FunctionSpec, route: tpl.HttpRoute
) -> None:
    # Given no JWT claims (API Gateway would have refused; the handler must too, as defence in depth)
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    # When the route is called
    response = api(route.method, _concrete(route.path), body, role=None)
    # Then it is 401 in the error format, never a 5xx
    assert response.status == 401, response
    assert response.body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("spec", "route"), AUTHORIZED, ids=AUTHORIZED_IDS)
def test_no_route_answers_5xx_to_an_empty_or_garbage_body(
    api: Api, spec: tpl.FunctionSpec, route: tpl.HttpRoute
) -> None:
    for role in ("admin", "staff", "customer"):
        for raw in ("", "{", "[]", '{"unexpected": true}', "\x00\xff"):
            response = api(
                route.method,
                _concrete(route.path),
                role=role,
                raw_body=raw if route.method in ("POST", "PUT", "PATCH") else None,
                headers={"content-type": "application/json"},
            )
            assert response.status < 500, (role, raw, response)
