"""Webhooks end to end on moto: subscriptions over the API, stream -> dispatch -> a real HTTP
receiver on 127.0.0.1 that verifies signatures with `standardwebhooks`, retries through the
retry queue with the same webhook-id, the dead-letter queue, the delivery log and replay."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.harness import Api, Aws
from local.runtime import invoke
from local.stream import passes_filters
from local.webhook_receiver import Receiver
from tests.support.webhooks import Dispatch, subscribe


def deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    return api.ok("GET", f"/v1/webhooks/{webhook_id}/deliveries", role="admin")["items"]


def test_customer_changes_reach_the_receiver_signed(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given a subscription to every event, and a customer created then renamed through the API
    hook = subscribe(api, receiver)
    customer = api.ok("POST", "/v1/customers", {"email": "ann@example.com", "first_name": "Ann"})
    api.ok("PATCH", f"/v1/customers/{customer['customer_id']}", {"last_name": "Lee"})
    # When the stream is pumped into the dispatch function
    records, result = dispatch.pump()
    # Then only profile records passed the template's filter, and nothing failed
    assert records and all(r["dynamodb"]["Keys"]["SK"]["S"] == "PROFILE" for r in records)
    assert result == {"batchItemFailures": []}
    # And the receiver got exactly customer.created (a rename is no event), signed and verified
    assert [r.payload["type"] for r in receiver.received] == ["customer.created"]
    got = receiver.received[0]
    assert got.verified is True
    assert got.payload["data"]["customer_id"] == customer["customer_id"]
    assert got.payload["data"]["program_status"] == "imported"
    assert "ann@example.com" not in got.body and "Ann" not in got.body
    assert got.webhook_id == f"evt_{records[0]['eventID']}_0"
    # And the delivery log shows one delivered attempt with its status code and latency
    (logged,) = deliveries(api, hook["webhook_id"])
    assert (logged["state"], logged["status_code"], logged["attempt"]) == ("delivered", 200, 1)
    assert logged["event_id"] == got.webhook_id and logged["latency_ms"] >= 0


def test_failing_receiver_gets_a_retry_with_the_same_webhook_id(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given a receiver that fails its first request, then recovers
    hook = subscribe(api, receiver, events=["customer.created"])
    receiver.statuses = [503]
    api.ok("POST", "/v1/customers", {"email": "bob@example.com"})
    # When the stream is dispatched
    _, result = dispatch.pump()
    # Then the record itself succeeded (the failure was handed to the retry queue)
    assert result == {"batchItemFailures": []}
    assert [r.status for r in receiver.received] == [503]
    # When the retry queue's message is processed
    assert dispatch.retry() == {"batchItemFailures": []}
    # Then the receiver got the same webhook-id again, verified, and answered 200
    first, second = receiver.received
    assert second.status == 200 and second.verified is True
    assert second.webhook_id == first.webhook_id and second.body == first.body
    # And the log lists both attempts, newest first
    log = deliveries(api, hook["webhook_id"])
    assert [(d["attempt"], d["state"]) for d in log] == [(2, "delivered"), (1, "retrying")]
    assert log[1]["status_code"] == 503 and log[1]["error"] == "HTTP 503"
    assert dispatch.messages("WebhookRetryQueue") == []


def test_permanently_failing_receiver_ends_in_the_dead_letter_queue_and_can_be_replayed(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given a receiver that always answers 500 (three attempts allowed)
    hook = subscribe(api, receiver, events=["customer.created"])
    receiver.default_status = 500
    api.ok("POST", "/v1/customers", {"email": "cy@example.com"})
    # When the stream and then every retry are processed
    dispatch.pump()
    dispatch.retry()
    dispatch.retry()
    # Then there were three attempts with one webhook-id, and the last is parked as dead
    assert len(receiver.received) == 3 and len({r.webhook_id for r in receiver.received}) == 1
    assert dispatch.messages("WebhookRetryQueue") == []
    (parked,) = dispatch.messages("WebhookDeadLetterQueue")
    body = json.loads(parked["Body"])
    assert body["event_id"] == receiver.received[0].webhook_id and body["error"] == "HTTP 500"
    assert "secret" not in parked["Body"] and "whsec_" not in parked["Body"]
    log = deliveries(api, hook["webhook_id"])
    assert [(d["attempt"], d["state"]) for d in log] == [(3, "dead"), (2, "retrying"), (1, "retrying")]
    # And the log pages newest first with an opaque cursor
    path = f"/v1/webhooks/{hook['webhook_id']}/deliveries"
    first_page = api.ok("GET", path, role="admin", query={"limit": 2})
    rest = api.ok("GET", path, role="admin", query={"limit": 2, "cursor": first_page["next_cursor"]})
    assert [d["delivery_id"] for d in first_page["items"] + rest["items"]] == [d["delivery_id"] for d in log]
    assert rest["next_cursor"] is None
    # When the receiver is fixed and the dead delivery is replayed
    receiver.default_status = 200
    replayed = api.ok(
        "POST", f"/v1/webhooks/{hook['webhook_id']}/deliveries/{log[0]['delivery_id']}/replay", role="admin"
    )
    # Then it arrives with the same webhook-id and body, and is logged as a replay
    assert replayed["state"] == "delivered" and replayed["replay_of"] == log[0]["delivery_id"]
    last = receiver.received[-1]
    assert last.status == 200 and last.verified is True
    assert last.webhook_id == receiver.received[0].webhook_id and last.body == receiver.received[0].body


def test_a_record_fails_only_when_its_retry_cannot_be_queued(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failing receiver, and a retry queue that refuses messages
    from loyalty.adapters import queues

    subscribe(api, receiver, events=["customer.created"])
    receiver.default_status = 500
    api.ok("POST", "/v1/customers", {"email": "dee@example.com"})
    api.ok("POST", "/v1/customers", {"email": "eve@example.com"})

    def refuse(message: dict[str, Any], delay_seconds: int) -> None:
        if message["event_id"].startswith(f"evt_{first_id}"):
            raise RuntimeError("queue unavailable")

    records = [r for r in dispatch.reader.read() if passes_filters(r, dispatch.filters)]
    first_id = records[0]["eventID"]
    monkeypatch.setattr(queues, "retry_webhook", refuse)
    # When the batch is dispatched
    result = invoke(dispatch.spec, {"Records": records})
    # Then only the record whose hand-off failed is reported, so Lambda sends just it again
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == [records[0]["dynamodb"]["SequenceNumber"]]


def test_ignored_actors_and_event_types_filter_deliveries(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given one subscription that ignores its own integration's changes
    subscribe(api, receiver, ignore_actors=["integration-1"])
    # When that integration and a staff member each create a customer
    mine = api.ok("POST", "/v1/customers", {"email": "own@example.com"}, role="service", sub="integration-1")
    theirs = api.ok("POST", "/v1/customers", {"email": "other@example.com"})
    dispatch.pump()
    # Then only the staff member's change is delivered
    ids = [r.payload["data"]["customer_id"] for r in receiver.received]
    assert ids == [theirs["customer_id"]] and mine["customer_id"] not in ids


def test_retry_not_yet_due_is_queued_again_without_sending(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a retry message due in two hours (longer than SQS can delay a message)
    import time

    from loyalty.adapters import queues

    hook = subscribe(api, receiver)
    message = {
        "business_id": "biz-1",
        "webhook_id": hook["webhook_id"],
        "event_id": "evt_x_0",
        "type": "customer.created",
        "body": "{}",
        "attempt": 1,
        "due_at": time.time() + 7200,
        "replay_of": None,
    }
    boto3.client("sqs").send_message(
        QueueUrl=dispatch.aws.refs["WebhookRetryQueue"], MessageBody=json.dumps(message)
    )
    queued: list[tuple[dict[str, Any], int]] = []
    original = queues.retry_webhook

    def spy(body: dict[str, Any], delay_seconds: int) -> None:
        queued.append((body, delay_seconds))
        original(body, delay_seconds)

    monkeypatch.setattr(queues, "retry_webhook", spy)
    # When the retry handler receives it
    assert dispatch.retry() == {"batchItemFailures": []}
    # Then nothing is sent, and the same message waits again for what remains
    assert receiver.received == []
    ((body, delay),) = queued
    assert body == message and 7000 < delay <= 7200


def test_subscription_api_rules(api: Api, local_stack: None, receiver: Receiver) -> None:
    # Given a subscription of biz-1
    hook = subscribe(api, receiver)
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["*"]
    # When listed / Then the secret is not shown again
    listed = api.ok("GET", "/v1/webhooks", role="admin")["items"]
    assert [h["webhook_id"] for h in listed] == [hook["webhook_id"]] and listed[0]["secret"] is None
    # When staff try to subscribe / Then 403
    assert api("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"]}).status == 403
    # When the body is bad / Then 422 naming the field, 400 for malformed JSON
    bad_type = api("POST", "/v1/webhooks", {"url": receiver.url, "events": ["customer.eaten"]}, role="admin")
    assert bad_type.status == 422 and bad_type.body["error"]["details"]["fields"][0]["field"] == "events[0]"
    extra = api("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"], "secret": "x"}, role="admin")
    assert extra.status == 422
    assert api("POST", "/v1/webhooks", raw_body="{not json", role="admin").status == 400
    metadata = api("POST", "/v1/webhooks", {"url": "http://169.254.169.254/", "events": ["*"]}, role="admin")
    assert metadata.status == 422 and metadata.body["error"]["details"]["fields"][0]["field"] == "url"
    # When another business reads, deletes or replays it / Then 404
    path = f"/v1/webhooks/{hook['webhook_id']}"
    assert api("GET", f"{path}/deliveries", role="admin", business="biz-2").status == 404
    assert api("DELETE", path, role="admin", business="biz-2").status == 404
    assert api("POST", f"{path}/deliveries/123/replay", role="admin").status == 404
    # When its owner deletes it / Then it is gone
    assert api("DELETE", path, role="admin").status == 204
    assert api("DELETE", path, role="admin").status == 404
    assert api.ok("GET", "/v1/webhooks", role="admin")["items"] == []


def test_outside_the_local_stack_only_public_https_targets_are_accepted(api: Api) -> None:
    # Given the deployed configuration (no local stack)
    # When loopback or private targets are subscribed / Then 422 naming `url`, nothing stored
    for url in ("http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://10.0.0.8/hook"):
        refused = api("POST", "/v1/webhooks", {"url": url, "events": ["*"]}, role="admin")
        assert refused.status == 422, refused
        assert refused.body["error"]["details"]["fields"][0]["field"] == "url"
    assert api.ok("GET", "/v1/webhooks", role="admin")["items"] == []


def test_sample_events_run_through_the_handlers(
    aws: Aws,
    api: Api,
    local_stack: None,
    receiver: Receiver,
    dispatch: Dispatch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loyalty.domain.webhooks import targets as webhook_targets
    from tests.support import load_event

    # Given the sample create event (a public https URL; DNS answers a public address)
    monkeypatch.setattr(webhook_targets, "system_resolver", lambda host, port: ["93.184.216.34"])
    created = invoke(aws.specs["WebhooksFunction"], load_event("webhooks/create_webhook.json"))
    # When it is invoked / Then the subscription is made and its secret shown once
    assert created["statusCode"] == 201, created
    assert json.loads(created["body"])["secret"].startswith("whsec_")
    # Given the sample retry message, aimed at a subscription to our receiver
    hook = subscribe(api, receiver)
    event = load_event("webhook_dispatch/sqs_retry.json")
    message = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**message, "webhook_id": hook["webhook_id"]})
    # When the dispatch function gets it
    result = invoke(dispatch.spec, event)
    # Then it is delivered as the second attempt with the message's event id
    assert result == {"batchItemFailures": []}
    (got,) = receiver.received
    assert got.webhook_id == message["event_id"] and got.verified is True
    assert deliveries(api, hook["webhook_id"])[0]["attempt"] == 2


def test_lifecycle_changes_through_the_functions_become_the_designed_events(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given a subscription to everything, and two ranked statuses
    subscribe(api, receiver)
    for code, name, rank in (("vip", "VIP", 1), ("staff", "Staff", 2)):
        api.ok("POST", "/v1/status-definitions", {"code": code, "name": name, "rank": rank}, role="admin")
    # When a card is packed, a customer registers with it, and gets both statuses
    virtual_id = api.ok("POST", "/v1/card-batches", {"numbers": ["7000001"]}, role="admin")["cards"][0][
        "customer_id"
    ]
    customer = api.ok("POST", "/v1/registrations", {"email": "reg@example.com", "card_number": "7000001"})
    cid = customer["customer_id"]
    api.ok("PUT", f"/v1/customers/{cid}/statuses/staff")
    api.ok("PUT", f"/v1/customers/{cid}/statuses/vip")
    _, result = dispatch.pump()
    # Then every change arrived as its event, each verified
    assert result == {"batchItemFailures": []}
    assert all(r.verified for r in receiver.received)
    # (deliveries run in parallel, so compare without order)
    by_customer: dict[str, list[str]] = {}
    for got in receiver.received:
        if got.payload["type"].startswith("customer."):
            by_customer.setdefault(got.payload["data"]["customer_id"], []).append(got.payload["type"])
    assert sorted(by_customer[virtual_id]) == [
        "customer.created",
        "customer.merged",
        "customer.program_status_changed",
    ]
    assert by_customer[cid].count("customer.registered") == 1
    assert by_customer[cid].count("customer.statuses_changed") == 2
    cards = sorted(
        (r.payload["data"] for r in receiver.received if r.payload["type"] == "card.changed"),
        key=lambda c: c["previous_state"] or "",
    )
    assert [(c["state"], c["previous_state"]) for c in cards] == [("issued", None), ("activated", "issued")]
    assert cards[1]["customer_id"] == cid and cards[1]["previous_customer_id"] == virtual_id
    merged = next(r.payload for r in receiver.received if r.payload["type"] == "customer.merged")
    assert merged["data"]["merged_into"] == cid
    # And the last statuses event lists both statuses by rank, with the best one
    last = max(
        (r.payload for r in receiver.received if r.payload["type"] == "customer.statuses_changed"),
        key=lambda p: p["data"]["version"],
    )
    assert last["data"]["statuses"] == [
        {"code": "vip", "name": "VIP", "rank": 1},
        {"code": "staff", "name": "Staff", "rank": 2},
    ]
    assert last["data"]["best_status"] == "vip"


def test_status_edits_without_a_read_become_invited_events(
    api: Api, local_stack: None, receiver: Receiver, dispatch: Dispatch
) -> None:
    # Given a subscription to invitations, an imported customer and a disconnected one
    subscribe(api, receiver, events=["customer.invited"])
    imported = api.ok("POST", "/v1/customers", {"email": "imp@example.com"})
    gone = api.ok("POST", "/v1/customers", {"email": "gone@example.com"})
    body = {"status": "active", "expected_version": gone["version"]}
    gone_v = api.ok("PUT", f"/v1/customers/{gone['customer_id']}/program-status", body)["version"]
    body = {"status": "inactive", "expected_version": gone_v}
    gone_v = api.ok("PUT", f"/v1/customers/{gone['customer_id']}/program-status", body)["version"]
    # When staff set both to pending with the version they saw (no read: the event is unknown)
    for cid, version in ((imported["customer_id"], imported["version"]), (gone["customer_id"], gone_v)):
        body = {"status": "pending", "expected_version": version}
        assert api.ok("PUT", f"/v1/customers/{cid}/program-status", body)["event"] is None
    _, result = dispatch.pump()
    # Then each arrives as customer.invited, resolved from the stream record's old image
    assert result == {"batchItemFailures": []}
    invited = sorted(
        (r.payload["data"]["customer_id"], r.payload["data"]["previous_program_status"])
        for r in receiver.received
    )
    assert invited == sorted([(imported["customer_id"], "imported"), (gone["customer_id"], "inactive")])
    # And the history names invite and re-invite
    for cid, event in ((imported["customer_id"], "invite"), (gone["customer_id"], "reinvite")):
        assert api.ok("GET", f"/v1/customers/{cid}/history")["items"][0]["event"] == event
