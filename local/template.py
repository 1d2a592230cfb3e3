"""Read template.yaml (SAM) so tests and the local stack run exactly what deploys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation's short-form intrinsics as long-form dicts."""


def _intrinsic(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic(_tag))
for _tag in (
    "GetAtt",
    "Sub",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "ImportValue",
):
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic(f"Fn::{_tag}"))


@lru_cache(maxsize=4)
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def table_definition(
    template: dict[str, Any], table_name: str, logical_id: str = "LoyaltyTable"
) -> dict[str, Any]:
    """`create_table` arguments from the template's own table resource."""
    props = template["Resources"][logical_id]["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return kwargs


def ttl_attribute(template: dict[str, Any], logical_id: str = "LoyaltyTable") -> str | None:
    spec = template["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification")
    return spec["AttributeName"] if spec and spec.get("Enabled") else None


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """Resolve Ref / GetAtt / Sub against `refs` (logical id or `Id.Attr` -> physical value)."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs.get(arg, arg)
        if key == "Fn::GetAtt":
            return refs.get(".".join(arg), ".".join(arg))
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(refs.get(m.group(1), m.group(0))), text)
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


@dataclass
class HttpRoute:
    method: str
    path: str  # API Gateway form: /v1/customers/{customer_id}
    authorizer: bool = True

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    http: list[HttpRoute] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def module_file(self) -> Path:
        return self.code_uri / (self.handler.rsplit(".", 1)[0] + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def functions(template: dict[str, Any], refs: dict[str, Any] | None = None) -> list[FunctionSpec]:
    refs = refs or {}
    globals_ = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, res in resources(template, "AWS::Serverless::Function").items():
        props = res["Properties"]
        env = dict(globals_.get("Environment", {}).get("Variables", {}))
        env.update(props.get("Environment", {}).get("Variables", {}))
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=ROOT / props["CodeUri"],
            handler=props.get("Handler", globals_.get("Handler", "app.lambda_handler")),
            environment={k: str(resolve(v, refs)) for k, v in env.items()},
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
        )
        for event_name, event in (props.get("Events") or {}).items():
            kind, ep = event["Type"], event.get("Properties", {})
            if kind == "HttpApi":
                auth = (ep.get("Auth") or {}).get("Authorizer")
                spec.http.append(HttpRoute(ep["Method"].upper(), ep["Path"], authorizer=auth != "NONE"))
            elif kind == "DynamoDB":
                spec.streams.append({"name": event_name, **ep})
            elif kind == "SQS":
                spec.queues.append({"name": event_name, **ep})
            elif kind == "S3":
                spec.buckets.append({"name": event_name, **ep})
            elif kind in ("Schedule", "ScheduleV2"):
                spec.schedules.append({"name": event_name, **ep})
        specs.append(spec)
    return specs
