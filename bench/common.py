"""Shared benchmark plumbing: figures, request counting, the mocked stack."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local.harness import fake_aws_environment

fake_aws_environment()


@dataclass
class Figure:
    """One printed figure. `ratio` is measured/target-baseline as the issue defines it."""

    name: str
    measured: float
    target: str
    ratio: float | None
    ok: bool
    unit: str = ""

    def row(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.3g}"
        return [
            self.name,
            f"{self.measured:.4g}{self.unit}",
            self.target,
            ratio,
            "ok" if self.ok else "MISSED",
        ]


class RequestCounter:
    """Counts AWS API calls by `service.Operation` with botocore's event hooks.

    Registered on the default boto3 session, so every client created afterwards (the
    layer's, Powertools', the test's) is counted. Create it before the clients.
    """

    def __init__(self) -> None:
        import boto3

        self.calls: Counter[str] = Counter()
        self._session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert self._session is not None
        self._session.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def dynamodb(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("dynamodb."))

    def reset(self) -> None:
        self.calls.clear()

    def close(self) -> None:
        self._session.events.unregister("before-call", self._count)


@contextmanager
def counted_stack(prefix: str = "bench") -> Iterator[tuple[Any, RequestCounter]]:
    """The mocked stack plus a counter of every AWS request made after it is set up."""
    from local.harness import mocked_aws

    with mocked_aws(prefix) as aws:
        from local.harness import reset_caches

        # moto resets boto3's default session when it starts: register after that, then
        # drop cached clients so every client is created anew and counted.
        counter = RequestCounter()
        reset_caches()
        try:
            yield aws, counter
        finally:
            counter.close()
