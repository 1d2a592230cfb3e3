"""Operations in template.yaml (docs/design.md#operations): every queue, function and the table
is watched by an alarm that says what to do and notifies the alarm topic; every function has
a log group with retention and is traced; the dashboard shows what the alarms watch."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from local import template as tpl
from loyalty.observability import BUSINESS_METRICS
from tests.support import ROOT

TEMPLATE = tpl.load()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
FUNCTIONS = tpl.resources(TEMPLATE, "AWS::Serverless::Function")
QUEUES = tpl.resources(TEMPLATE, "AWS::SQS::Queue")
ALARMS = tpl.resources(TEMPLATE, "AWS::CloudWatch::Alarm")
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its own, or each one of its metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{k: props.get(k) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def dimension(metric: dict[str, Any], name: str) -> Any:
    return next((d["Value"] for d in metric.get("Dimensions") or [] if d["Name"] == name), None)


def alarms_on(namespace: str, metric_name: str, dim: str, value: Any) -> list[str]:
    return [
        alarm_id
        for alarm_id, alarm in ALARMS.items()
        for m in metric_stats(alarm)
        if m["Namespace"] == namespace and m["MetricName"] == metric_name and dimension(m, dim) == value
    ]


def dead_letter_queues() -> set[str]:
    """Redrive targets, and queues a stream mapping sends its failed batches to."""
    targets = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in QUEUES.values()
        if "RedrivePolicy" in (q.get("Properties") or {})
    }
    for fn in FUNCTIONS.values():
        for event in (fn["Properties"].get("Events") or {}).values():
            destination = (event["Properties"].get("DestinationConfig") or {}).get("OnFailure")
            if destination:
                targets.add(destination["Destination"]["Fn::GetAtt"][0])
    return targets


def test_every_dead_letter_queue_alarms_on_its_first_message() -> None:
    # Given the queues that park failed work (including the stream's on-failure queue)
    parked = dead_letter_queues()
    assert {"ImportChunkDeadLetterQueue", "WebhookDeadLetterQueue", "StreamFailureQueue"} <= parked
    for queue in parked:
        # Then an alarm fires when one message is visible in it
        ids = alarms_on(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", {"Fn::GetAtt": [queue, "QueueName"]}
        )
        assert ids, f"no alarm on {queue}"
        props = ALARMS[ids[0]]["Properties"]
        assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold"), ids[0]


def test_every_queue_with_a_dead_letter_target_has_an_alarm() -> None:
    sources = [q for q, r in QUEUES.items() if "RedrivePolicy" in (r.get("Properties") or {})]
    assert len(sources) >= 3
    for queue in sources:
        # A consumer that stopped shows as messages getting old before any reaches the DLQ
        ids = alarms_on(
            "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", {"Fn::GetAtt": [queue, "QueueName"]}
        )
        assert ids, f"no alarm on {queue}"
    # And no queue at all goes unwatched
    watched = {str(dimension(m, "QueueName")) for a in ALARMS.values() for m in metric_stats(a)}
    assert all(str({"Fn::GetAtt": [q, "QueueName"]}) in watched for q in QUEUES), sorted(QUEUES)


@pytest.mark.parametrize("metric_name", ["Errors", "Throttles"])
def test_every_function_alarms_on_errors_and_throttles(metric_name: str) -> None:
    for function in FUNCTIONS:
        ids = alarms_on("AWS/Lambda", metric_name, "FunctionName", {"Ref": function})
        assert len(ids) == 1, f"{function}: {metric_name} alarms {ids}"


def test_stream_consumers_alarm_on_iterator_age_over_the_parameter() -> None:
    consumers = [
        f
        for f, r in FUNCTIONS.items()
        if any(e["Type"] == "DynamoDB" for e in (r["Properties"].get("Events") or {}).values())
    ]
    assert consumers == ["WebhookDispatchFunction"]
    for function in consumers:
        (alarm_id,) = alarms_on("AWS/Lambda", "IteratorAge", "FunctionName", {"Ref": function})
        assert ALARMS[alarm_id]["Properties"]["Threshold"] == {"Ref": "StreamIteratorAgeAlarmMs"}
    assert "StreamIteratorAgeAlarmMs" in TEMPLATE["Parameters"]


@pytest.mark.parametrize("metric_name", ["ThrottledRequests", "SystemErrors"])
def test_the_table_alarms_on_throttles_and_system_errors_of_every_operation_it_uses(metric_name: str) -> None:
    # DynamoDB publishes these per operation only: the alarm sums the operations the code calls
    (alarm_id,) = set(alarms_on("AWS/DynamoDB", metric_name, "TableName", {"Ref": "LoyaltyTable"}))
    operations = {dimension(m, "Operation") for m in metric_stats(ALARMS[alarm_id])}
    source = "\n".join(p.read_text() for p in (ROOT / "shared" / "loyalty").rglob("*.py"))
    called = {
        "".join(part.title() for part in name.split("_"))
        for name in re.findall(
            r"\.(get_item|put_item|update_item|delete_item|query|scan|batch_get_item|"
            r"batch_write_item|transact_write_items|transact_get_items)\(",
            source,
        )
    }
    # Powertools idempotency also gets, puts, updates and deletes its records
    assert called | {"GetItem", "PutItem", "UpdateItem", "DeleteItem"} <= operations, operations
    expressions = [m for m in ALARMS[alarm_id]["Properties"]["Metrics"] if "Expression" in m]
    assert [m["Expression"] for m in expressions if m["ReturnData"]] == ["SUM(METRICS())"]


def test_business_alarms_read_metrics_the_service_emits() -> None:
    # Given the metric names and dimension values loyalty/observability.py can emit
    declared = {(m.name, m.dimension, v) for m in BUSINESS_METRICS for v in m.values}
    read = [
        (alarm_id, m)
        for alarm_id, alarm in ALARMS.items()
        for m in metric_stats(alarm)
        if m["Namespace"] not in ("AWS/SQS", "AWS/Lambda", "AWS/DynamoDB")
    ]
    # Then there are the webhook failure rate and failed imports alarms
    assert {a for a, _ in read} == {"WebhookFailureRateAlarm", "ImportsFailedAlarm"}
    for alarm_id, m in read:
        # And each reads the namespace and service the functions publish under
        assert m["Namespace"] == GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"], alarm_id
        assert dimension(m, "service") == GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"], alarm_id
        # And a metric and dimension value the code declares
        (name, value) = next((d["Name"], d["Value"]) for d in m["Dimensions"] if d["Name"] != "service")
        assert (m["MetricName"], name, value) in declared, (alarm_id, m)
    outcomes = {dimension(m, "outcome") for a, m in read if a == "WebhookFailureRateAlarm"}
    assert outcomes == {"delivered", "retrying", "dead"}


def test_every_alarm_says_what_to_do_and_notifies_the_topic() -> None:
    assert len(ALARMS) >= 2 * len(FUNCTIONS) + len(QUEUES) + 4
    for alarm_id, alarm in ALARMS.items():
        props = alarm["Properties"]
        description = props.get("AlarmDescription")
        text = description["Fn::Sub"] if isinstance(description, dict) else description
        assert isinstance(text, str) and "Do:" in text, f"{alarm_id} does not say what to do"
        assert len(text) <= 1024 - 100, f"{alarm_id}: description near CloudWatch's 1,024 limit"
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm_id
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], alarm_id
        assert props["TreatMissingData"] == "notBreaching", alarm_id


def test_the_runbook_names_every_alarm() -> None:
    # Given the README's runbook / Then it covers every alarm (by the name's stack-less suffix)
    readme = (ROOT / "README.md").read_text()
    runbook = readme[readme.index("## Runbook") :].split("\n## ", 1)[0]
    for alarm_id, alarm in ALARMS.items():
        suffix = alarm["Properties"]["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        metric = metric_stats(alarm)[0]
        if (metric["Namespace"], metric["MetricName"]) in (
            ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles"),
        ):
            suffix = f"<function>-{metric['MetricName'].lower()}"  # one runbook entry for all functions
        assert f"`{suffix}`" in runbook, f"runbook omits {alarm_id} ({suffix})"


def test_the_email_subscription_is_optional() -> None:
    param = TEMPLATE["Parameters"]["AlarmEmail"]
    assert param["Default"] == ""
    subscriptions = tpl.resources(TEMPLATE, "AWS::SNS::Subscription")
    assert {s["Condition"] for s in subscriptions.values()} == {"HasAlarmEmail"}
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = tpl.resources(TEMPLATE, "AWS::Logs::LogGroup")
    named = {g["Properties"]["LogGroupName"]["Fn::Sub"]: g["Properties"] for g in groups.values()}
    for function in FUNCTIONS:
        # Lambda's own group name, so the function writes there rather than creating another
        props = named.get(f"/aws/lambda/${{{function}}}")
        assert props, f"{function} has no log group"
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_tracing_is_active_and_every_handler_is_traced_without_its_response() -> None:
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"
    assert all("Tracing" not in f["Properties"] for f in FUNCTIONS.values())  # none opts out
    for spec in tpl.functions(TEMPLATE):
        handler = next(
            node
            for node in ast.walk(ast.parse(spec.module_file.read_text()))
            if isinstance(node, ast.FunctionDef) and node.name == spec.handler_name
        )
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        # Responses hold personal data (profiles): they stay out of trace metadata
        assert "tracer.capture_lambda_handler(capture_response=False)" in decorators, spec.logical_id
        assert "metrics.log_metrics" in decorators, spec.logical_id


def test_the_dashboard_body_is_json_and_shows_what_the_alarms_watch() -> None:
    (dashboard,) = tpl.resources(TEMPLATE, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    # Every substitution names a parameter, a resource (or its attribute) or a pseudo parameter
    known = set(TEMPLATE["Parameters"]) | set(RESOURCES) | {"AWS::Region"}
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    assert {n.split(".")[0] for n in names} <= known, names - known
    # And the body is valid JSON once substituted (numbers unquoted, names quoted)
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", body))["widgets"]
    shown = json.dumps(widgets)
    assert all(f"${{{f}}}" in body for f in FUNCTIONS)
    assert all(f"${{{q}.QueueName}}" in body for q in QUEUES)
    assert all(f'"{m.name}"' in shown for m in BUSINESS_METRICS)
    assert "${LoyaltyTable}" in body
