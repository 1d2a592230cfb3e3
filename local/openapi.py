"""`python -m local.openapi` (`make openapi`): the API's OpenAPI document, from the handlers.

One APIGatewayHttpResolver includes the `router` of every function module that serves
HttpApi routes in template.yaml, so the document comes from the code that runs. Routes
the template declares with `Auth: {Authorizer: NONE}` are marked as needing no token.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any

from local import template as tpl
from local.template import ROOT, FunctionSpec

TITLE = "Loyalty membership API"
SECURITY_SCHEME = "bearerAuth"

if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))


def api_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route of a Powertools Router (`<param>` -> `{param}`)."""
    found: set[tuple[str, str]] = set()
    for key in router._routes:  # (rule, methods, ...) - the Router's own registry
        rule, methods = key[0], key[1]
        path = re.sub(r"<(\w+)>", r"{\1}", rule)
        found.update((str(m).upper(), path) for m in methods)
    return found


@dataclass
class HttpModules:
    """Function modules that serve HttpApi routes, and the ones that do not exist yet."""

    loaded: list[tuple[FunctionSpec, Any]] = field(default_factory=list)
    missing: list[FunctionSpec] = field(default_factory=list)


def load_for_routes(spec: FunctionSpec) -> Any:
    """A function module loaded to read its routes (nothing is called).

    Modules check their environment at import (loyalty.config): what is unset gets the
    template's value, resolved with placeholder names and the local parameters.
    """
    from local.resources import LOCAL_PARAMETERS
    from local.runtime import load_module

    (resolved,) = [
        s for s in tpl.functions(tpl.load(), dict(LOCAL_PARAMETERS)) if s.logical_id == spec.logical_id
    ]
    for key, value in resolved.environment.items():
        os.environ.setdefault(key, value)
    return load_module(spec)


def http_modules(template: dict[str, Any] | None = None) -> HttpModules:
    """Load (local.runtime) each function module with HttpApi routes; import errors propagate."""
    result = HttpModules()
    for spec in sorted(tpl.functions(template or tpl.load()), key=lambda s: s.logical_id):
        if not spec.http:
            continue
        if not spec.module_file.exists():
            result.missing.append(spec)
            continue
        result.loaded.append((spec, load_for_routes(spec)))
    return result


def build_schema() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    template = tpl.load()
    app = APIGatewayHttpResolver(enable_validation=True)
    for spec, module in http_modules(template).loaded:
        router = getattr(module, "router", None)
        if router is None:
            print(
                f"warning: {spec.module_file} has no `router`; its routes are not documented", file=sys.stderr
            )
            continue
        # include_router points the router at this resolver; the function's own app must
        # keep receiving its events (tests load the same module object).
        saved = router.api_resolver
        try:
            app.include_router(router)
        finally:
            router.api_resolver = saved
    schema: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=api_version(),
            description=(
                "Program status, cards, ranked statuses, imports, invitations and webhooks for a "
                "business's loyalty members. Every route but the invitation answers needs a JWT "
                "with claims sub, business_id and role."
            ),
            security_schemes={SECURITY_SCHEME: HTTPBearer(bearerFormat="JWT")},
            security=[{SECURITY_SCHEME: []}],
        )
    )
    # Sorted, so adding a function moves no other path in the committed file.
    schema["paths"] = dict(sorted((schema.get("paths") or {}).items()))
    for spec in tpl.functions(template):
        for route in spec.http:
            operation = (schema.get("paths") or {}).get(route.path, {}).get(route.method.lower())
            if operation is not None and not route.authorizer:
                operation["security"] = []  # the template's `Authorizer: NONE`
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    # Handler modules may build clients at import; give them a region and fake credentials.
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "openapi",
        "AWS_SECRET_ACCESS_KEY": "openapi",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }.items():
        os.environ.setdefault(key, value)
    # Build everything before printing: `make openapi > openapi.json` must not get half a file.
    text = render(build_schema())
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
