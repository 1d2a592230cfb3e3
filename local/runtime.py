"""Load function handlers from their folders and invoke them like Lambda does."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from local.events import route_regex
from local.template import FunctionSpec, HttpRoute

_lock = threading.Lock()


@dataclass
class FakeContext:
    """The parts of LambdaContext that Powertools reads."""

    function_name: str
    timeout_seconds: int = 30
    memory_limit_in_mb: int = 512

    def __post_init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(spec: FunctionSpec) -> ModuleType:
    """Import a function's handler module under a unique name (folders all hold `app.py`)."""
    name = f"fn_{spec.logical_id}"
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, spec.module_file)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def handler_of(spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
    return getattr(load_module(spec), spec.handler_name)


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    return handler_of(spec)(event, FakeContext(spec.logical_id, spec.timeout))


class RouteTable:
    """Maps `METHOD /path` to the function and route the template declares for it."""

    def __init__(self, specs: list[FunctionSpec]) -> None:
        self._routes: list[tuple[Any, HttpRoute, FunctionSpec, int]] = []
        for spec in specs:
            for route in spec.http:
                # Literal segments win over parameters (`/order` before `/{code}`), as in API Gateway.
                literal = sum(1 for part in route.path.split("/") if part and not part.startswith("{"))
                self._routes.append((route_regex(route.path), route, spec, literal))
        self._routes.sort(key=lambda r: -r[3])

    def match(self, method: str, path: str) -> tuple[FunctionSpec, HttpRoute, dict[str, str]] | str | None:
        """The match; "method" when the path exists with other methods; None when no route."""
        path_exists = False
        for regex, route, spec, _ in self._routes:
            found = regex.match(path)
            if not found:
                continue
            path_exists = True
            if route.method == method.upper():
                return spec, route, found.groupdict()
        return "method" if path_exists else None

    def all(self) -> list[tuple[HttpRoute, FunctionSpec]]:
        return [(r, s) for _, r, s, _ in self._routes]
