"""template.yaml and the handlers' routers cannot drift: every HttpApi route in the
template is served by its function's router, and every router route is in the template."""

from __future__ import annotations

from typing import Any

import pytest

from local import template as tpl
from local.openapi import load_for_routes, router_routes

SPECS = sorted(tpl.functions(tpl.load()), key=lambda s: s.logical_id)
HTTP_SPECS = [s for s in SPECS if s.http]


def _params() -> list[Any]:
    params = []
    for spec in HTTP_SPECS:
        missing = not spec.module_file.exists()
        for route in spec.http:
            marks = (
                [pytest.mark.skip(reason=f"{spec.module_file.relative_to(tpl.ROOT)} does not exist yet")]
                if missing
                else []
            )
            params.append(pytest.param(spec, route, id=f"{spec.logical_id}:{route.route_key}", marks=marks))
    return params


def _router(spec: tpl.FunctionSpec) -> Any:
    module = load_for_routes(spec)
    router = getattr(module, "router", None)
    assert router is not None, f"{spec.module_file} has no module-level `router = APIGatewayHttpRouter()`"
    return router


@pytest.mark.parametrize(("spec", "route"), _params())
def test_every_template_route_is_served_by_its_functions_router(
    spec: tpl.FunctionSpec, route: tpl.HttpRoute
) -> None:
    # Given the route template.yaml sends to this function
    # When the function module's router is read
    served = router_routes(_router(spec))
    # Then it has a route with the same method and path
    assert (route.method, route.path) in served, f"{spec.module_file} does not serve {route.route_key}"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(
            s,
            id=s.logical_id,
            marks=[pytest.mark.skip(reason=f"{s.module_file.relative_to(tpl.ROOT)} does not exist yet")]
            if not s.module_file.exists()
            else [],
        )
        for s in HTTP_SPECS
    ],
)
def test_every_router_route_is_declared_in_the_template(spec: tpl.FunctionSpec) -> None:
    # Given the routes the template sends to this function
    declared = {(r.method, r.path) for r in spec.http}
    # When the router's routes are read
    served = router_routes(_router(spec))
    # Then none is unreachable (API Gateway would never send it)
    assert served <= declared, f"routes not in template.yaml: {sorted(served - declared)}"
