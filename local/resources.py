"""Create the template's table, buckets and queues on moto; return physical names by logical id."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local import template as tpl

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Parameters a deployment must set (no default in template.yaml); these values are local only.
LOCAL_PARAMETERS = {"SuppressionKey": "local-suppression-key-not-a-secret"}


def provision(template: dict[str, Any], prefix: str = "loyalty") -> dict[str, Any]:
    """Provision every resource local runs need. `refs` resolves !Ref / !GetAtt in the template."""
    refs: dict[str, Any] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": prefix}
    for name, param in (template.get("Parameters") or {}).items():
        refs[name] = param.get("Default", LOCAL_PARAMETERS.get(name, ""))

    ddb = boto3.client("dynamodb", region_name=REGION)
    for logical_id in tpl.resources(template, "AWS::DynamoDB::Table"):
        table_name = f"{prefix}-{logical_id}"
        ddb.create_table(**tpl.table_definition(template, table_name, logical_id))
        ttl = tpl.ttl_attribute(template, logical_id)
        if ttl:
            ddb.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
            )
        desc = ddb.describe_table(TableName=table_name)["Table"]
        refs[logical_id] = table_name
        refs[f"{logical_id}.Arn"] = desc["TableArn"]
        refs[f"{logical_id}.StreamArn"] = desc.get("LatestStreamArn", "")

    s3 = boto3.client("s3", region_name=REGION)
    for logical_id in tpl.resources(template, "AWS::S3::Bucket"):
        bucket = f"{prefix}-{logical_id}".lower()
        s3.create_bucket(Bucket=bucket)
        refs[logical_id] = bucket
        refs[f"{logical_id}.Arn"] = f"arn:aws:s3:::{bucket}"

    sqs = boto3.client("sqs", region_name=REGION)
    queues = tpl.resources(template, "AWS::SQS::Queue")
    # Dead-letter queues first: a redrive policy names its target's ARN.
    ordered = sorted(queues, key=lambda q: "RedrivePolicy" in (queues[q].get("Properties") or {}))
    for logical_id in ordered:
        props = queues[logical_id].get("Properties") or {}
        attributes: dict[str, str] = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(tpl.resolve(props["RedrivePolicy"], refs))
        url = sqs.create_queue(QueueName=f"{prefix}-{logical_id}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        refs[logical_id] = url
        refs[f"{logical_id}.Arn"] = arn
        refs[f"{logical_id}.QueueName"] = f"{prefix}-{logical_id}"

    ses = boto3.client("ses", region_name=REGION)
    sender = str(refs.get("MailSender") or "loyalty@example.com")
    ses.verify_email_identity(EmailAddress=sender)
    return refs


def function_environment(template: dict[str, Any], refs: dict[str, Any]) -> dict[str, str]:
    """The environment every function gets (Globals), resolved; functions add their own."""
    env: dict[str, str] = {}
    for spec in tpl.functions(template, refs):
        env.update(spec.environment)
    return env
