"""Event sources the local stack wires itself, from the template: stream, SQS, S3, SES outbox.

moto (without Docker) delivers none of these to functions, so each pump polls its source
and invokes the subscribed function the way the Lambda service would. A pump's `poll()`
does one round and returns how much work it did (0 when there was nothing to do);
`pending()` counts what it holds back for a later retry, so `wait_idle` can tell.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from local.events import s3_put_event, sqs_event
from local.stream import StreamReader, passes_filters
from local.template import FunctionSpec
from local.workers import FunctionFailed, StackStopping

log = logging.getLogger("local.pumps")

Invoker = Callable[[FunctionSpec, dict[str, Any]], Any]

REPORT_FAILURES = "ReportBatchItemFailures"


class Pump:
    name = "pump"
    interval = 0.1

    def poll(self) -> int:
        raise NotImplementedError

    def pending(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {}


def _trace(exc: Exception) -> bool:
    """Log a traceback only for errors the invoker has not logged with the function's own."""
    return not isinstance(exc, FunctionFailed)


def _reports_failures(props: dict[str, Any]) -> bool:
    return REPORT_FAILURES in (props.get("FunctionResponseTypes") or [])


def _failed_ids(result: Any, ids: list[str]) -> list[str] | None:
    """Identifiers the function reported as failed; None means the whole batch failed.

    Lambda treats an unknown, empty or missing itemIdentifier as a failure of the batch.
    """
    if not isinstance(result, dict):
        return []
    failures = result.get("batchItemFailures") or []
    reported = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    if any(not i or i not in ids for i in reported):
        return None
    return [str(i) for i in reported]


class StreamPump(Pump):
    """One event source mapping of a DynamoDB stream to a function (Type: DynamoDB)."""

    def __init__(
        self,
        spec: FunctionSpec,
        props: dict[str, Any],
        invoker: Invoker,
        sqs: Any,
        queue_urls: dict[str, str],
        max_retries: int = 3,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.spec, self.props, self.invoker = spec, props, invoker
        self.name = f"stream:{spec.logical_id}.{props['name']}"
        self.reader = StreamReader(str(props["Stream"]))
        self.batch_size = int(props.get("BatchSize", 100))
        self.reports = _reports_failures(props)
        self.bisect = bool(props.get("BisectBatchOnFunctionError", False))
        self.batch_limit = self.batch_size
        # The template's MaximumRetryAttempts (-1 = forever) capped: locally a poison record
        # should reach the failure destination in seconds, not hours.
        template_retries = int(props.get("MaximumRetryAttempts", -1))
        self.max_retries = max_retries if template_retries < 0 else min(template_retries, max_retries)
        self.backoff_seconds = backoff_seconds
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.on_failure_url = queue_urls.get(str(destination)) if destination else None
        self.sqs = sqs
        self.buffer: list[dict[str, Any]] = []
        self.attempts = 0
        self.not_before = 0.0
        self.delivered = 0
        self.dead_lettered = 0

    def pending(self) -> int:
        return len(self.buffer)

    def stats(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "dead_lettered": self.dead_lettered}

    def poll(self) -> int:
        filters = self.props.get("FilterCriteria")
        # Records that match no filter are consumed without an invocation, as in Lambda.
        self.buffer.extend(r for r in self.reader.read() if passes_filters(r, filters))
        if not self.buffer or time.monotonic() < self.not_before:
            return 0
        batch = self.buffer[: self.batch_limit]
        failed_at, errored = self._invoke(batch)
        if failed_at is None:
            del self.buffer[: len(batch)]
            self.delivered += len(batch)
            self.attempts = 0
            self.batch_limit = self.batch_size
            return 1
        if errored and self.bisect and len(batch) > 1:
            # BisectBatchOnFunctionError: retry the first half alone, not counted as a retry.
            self.batch_limit = max(1, len(batch) // 2)
            return 1
        # Records before the first failure are done; the rest of the batch is retried.
        del self.buffer[:failed_at]
        self.delivered += failed_at
        self.attempts += 1
        if self.attempts > self.max_retries:
            failed = batch[failed_at:]
            self._send_to_destination(failed)
            del self.buffer[: len(failed)]
            self.attempts = 0
        else:
            self.not_before = time.monotonic() + self.backoff_seconds * 2 ** (self.attempts - 1)
        return 1

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[int | None, bool]:
        """(None, False) on success, else (index of the first record to retry, function errored)."""
        try:
            result = self.invoker(self.spec, {"Records": batch})
        except StackStopping:
            raise
        except Exception:
            log.warning("%s: function error; the batch will be retried", self.name)
            return 0, True
        if not self.reports:
            return None, False
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        failed = _failed_ids(result, seqs)
        if failed is None:
            log.warning("%s: unknown itemIdentifier in batchItemFailures; retrying the batch", self.name)
            return 0, False
        if not failed:
            return None, False
        return min(seqs.index(i) for i in failed), False

    def _send_to_destination(self, records: list[dict[str, Any]]) -> None:
        self.dead_lettered += len(records)
        if not self.on_failure_url:
            log.error("%s: dropping %d records after retries (no OnFailure)", self.name, len(records))
            return
        # The shape Lambda sends to a stream's on-failure destination: batch metadata, not records.
        arrivals = [r["dynamodb"].get("ApproximateCreationDateTime") for r in records]
        body = {
            "requestContext": {
                "requestId": uuid.uuid4().hex,
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{self.spec.logical_id}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.max_retries + 1,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": str(arrivals[0]),
                "approximateArrivalOfLastRecord": str(arrivals[-1]),
                "batchSize": len(records),
                "streamArn": self.reader.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(body, default=str))
        log.error("%s: %d records sent to the OnFailure destination", self.name, len(records))


class SqsPump(Pump):
    """One SQS event source mapping (Type: SQS). moto itself moves a message to the
    queue's dead-letter queue on the receive after `maxReceiveCount` receives."""

    def __init__(
        self,
        spec: FunctionSpec,
        props: dict[str, Any],
        invoker: Invoker,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        retry_seconds: float = 1.0,
    ) -> None:
        self.spec, self.props, self.invoker, self.sqs = spec, props, invoker, sqs
        self.name = f"sqs:{spec.logical_id}.{props['name']}"
        self.queue_url, self.queue_arn = queue_url, queue_arn
        self.batch_size = min(10, int(props.get("BatchSize", 10)))
        self.reports = _reports_failures(props)
        self.retry_seconds = retry_seconds
        self._retry_at: dict[str, float] = {}
        self.succeeded = 0
        self.failed = 0

    def stats(self) -> dict[str, Any]:
        return {"succeeded": self.succeeded, "failed": self.failed}

    def pending(self) -> int:
        # A failed message is invisible until its local retry; count it until one poll after.
        now = time.monotonic()
        return sum(1 for at in self._retry_at.values() if at + 2 * self.interval + 0.5 > now)

    def poll(self) -> int:
        out = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages = out.get("Messages") or []
        if not messages:
            return 0
        ids = [m["MessageId"] for m in messages]
        try:
            result = self.invoker(self.spec, sqs_event(messages, self.queue_arn))
            failed = _failed_ids(result, ids) if self.reports else []
        except StackStopping:
            raise
        except Exception as exc:
            # A function's own traceback is in the log already; anything else gets one here.
            log.error("%s: function error; the batch stays on the queue", self.name, exc_info=_trace(exc))
            failed = None
        failed_set = set(ids if failed is None else failed)
        for message in messages:
            message_id = message["MessageId"]
            if message_id in failed_set:
                # The queue's VisibilityTimeout can be 15 minutes; locally retry in seconds.
                receives = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
                delay = min(30.0, self.retry_seconds * receives)
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=max(0, round(delay)),
                )
                self._retry_at[message_id] = time.monotonic() + delay
                self.failed += 1
            else:
                self.succeeded += 1
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self._retry_at.pop(message_id, None)
        return 1


class S3Pump(Pump):
    """Bucket notifications (Type: S3): each new object under the filter invokes once."""

    interval = 0.25
    max_attempts = 3  # Lambda's asynchronous invocation: the first try and two retries

    def __init__(self, spec: FunctionSpec, props: dict[str, Any], invoker: Invoker, s3: Any) -> None:
        self.spec, self.props, self.invoker, self.s3 = spec, props, invoker, s3
        self.name = f"s3:{spec.logical_id}.{props['name']}"
        self.bucket = str(props["Bucket"])
        rules = ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        by_name = {str(r.get("Name", "")).lower(): str(r.get("Value", "")) for r in rules}
        self.prefix, self.suffix = by_name.get("prefix", ""), by_name.get("suffix", "")
        events = props.get("Events") or []
        events = [events] if isinstance(events, str) else events
        self.enabled = any(str(e).startswith("s3:ObjectCreated") for e in events)
        self._seen: set[tuple[str, str]] = set()
        self._attempts: dict[tuple[str, str], int] = {}
        self.invocations = 0

    def stats(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "objects": len(self._seen)}

    def poll(self) -> int:
        if not self.enabled:
            return 0
        new: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents") or []:
                ident = (obj["Key"], f"{obj.get('ETag', '')}{obj.get('LastModified', '')}")
                if ident not in self._seen and obj["Key"].endswith(self.suffix):
                    new.append(obj)
        for obj in new:
            ident = (obj["Key"], f"{obj.get('ETag', '')}{obj.get('LastModified', '')}")
            event = s3_put_event(self.bucket, obj["Key"], int(obj.get("Size", 0)), str(obj.get("ETag", "")))
            try:
                self.invocations += 1
                self.invoker(self.spec, event)
            except StackStopping:
                raise
            except Exception as exc:
                self._attempts[ident] = self._attempts.get(ident, 0) + 1
                log.error(
                    "%s: function error for %s (try %d)",
                    self.name,
                    obj["Key"],
                    self._attempts[ident],
                    exc_info=_trace(exc),
                )
                if self._attempts[ident] < self.max_attempts:
                    continue
            self._seen.add(ident)
        return len(new)


class OutboxPump(Pump):
    """Writes every e-mail sent through SES (moto's in-process backend) as an .eml file."""

    interval = 0.2

    def __init__(self, outbox: Path) -> None:
        self.name = "ses:outbox"
        self.outbox = outbox
        self._written: dict[tuple[str, str], int] = {}
        self.count = 0

    def stats(self) -> dict[str, Any]:
        return {"written": self.count, "outbox_dir": str(self.outbox)}

    def poll(self) -> int:
        from moto.ses.models import ses_backends

        written = 0
        for account_id in list(ses_backends.keys()):
            for region, backend in list(ses_backends[account_id].items()):
                start = self._written.get((account_id, region), 0)
                new = backend.sent_messages[start:]  # not a copy of every message sent so far
                for message in new:
                    self._write(message)
                    written += 1
                self._written[(account_id, region)] = start + len(new)
        return written

    def _write(self, message: Any) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.count += 1
        recipients = _recipients(message)
        if hasattr(message, "raw_data"):
            data = str(message.raw_data).encode("utf-8")
        else:
            eml = EmailMessage()
            ses_id = str(getattr(message, "id", "") or "")
            eml["Message-ID"] = f"<{ses_id}@local>" if ses_id else make_msgid(domain="local.ses")
            eml["Date"] = format_datetime(datetime.now(UTC))
            eml["From"] = str(message.source)
            eml["To"] = ", ".join(recipients["to"]) or "undisclosed-recipients:;"
            if recipients["cc"]:
                eml["Cc"] = ", ".join(recipients["cc"])
            if recipients["bcc"]:
                eml["Bcc"] = ", ".join(recipients["bcc"])
            if hasattr(message, "subject"):
                eml["Subject"] = str(message.subject)
                body = str(message.body or "")
                # moto keeps only the HTML part when both were sent.
                is_html = bool(re.search(r"<(html|body|p|a|div|br)\b", body, re.IGNORECASE))
                eml.set_content(body, subtype="html" if is_html else "plain")
            else:  # a templated message: keep the template and its data
                eml["Subject"] = f"[template {getattr(message, 'template', '?')}]"
                eml.set_content(str(getattr(message, "template_data", "")))
            data = eml.as_bytes()
        first = (recipients["to"] or recipients["cc"] or ["message"])[0]
        safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", first)[:80]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.outbox / f"{stamp}-{self.count:05d}-{safe}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file
        log.info("outbox: %s", path)


def _recipients(message: Any) -> dict[str, list[str]]:
    destinations = getattr(message, "destinations", None) or {}
    if isinstance(destinations, list):
        return {"to": [str(d) for d in destinations], "cc": [], "bcc": []}
    return {
        "to": [str(a) for a in destinations.get("ToAddresses") or []],
        "cc": [str(a) for a in destinations.get("CcAddresses") or []],
        "bcc": [str(a) for a in destinations.get("BccAddresses") or []],
    }
