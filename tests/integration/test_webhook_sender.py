"""The webhook HTTP sender against a real receiver on 127.0.0.1: connection reuse, timeouts,
redirects and non-2xx answers (sockets, no AWS)."""

from __future__ import annotations

import urllib3

from local.webhook_receiver import running_receiver
from loyalty.services.webhook_dispatch import Sender
from loyalty.webhook_signing import headers, new_secret
from loyalty.webhook_targets import check_target


def test_sequential_deliveries_reuse_one_connection_and_verify() -> None:
    # Given a receiver and a sender
    secret = new_secret()
    with running_receiver(secret=secret) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender()
        # When five deliveries are sent one after another
        outcomes = [
            sender.post(target, headers(secret, f"evt_{i}", 1_790_000_000, "{}"), "{}") for i in range(5)
        ]
        # Then all succeed over a single kept-alive connection
        assert all(o.ok and o.status_code == 200 for o in outcomes)
        assert len({r.peer for r in receiver.received}) == 1
        assert [r.webhook_id for r in receiver.received] == [f"evt_{i}" for i in range(5)]


def test_slow_endpoint_times_out_and_errors_are_reported_not_raised() -> None:
    # Given an endpoint slower than the sender's timeout
    with running_receiver(delay_seconds=0.5) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender(timeout=urllib3.Timeout(connect=0.2, read=0.1, total=0.2))
        # When a delivery is sent / Then it is a timeout failure
        outcome = sender.post(target, {"webhook-id": "evt_t"}, "{}")
        assert not outcome.ok and outcome.error == "timeout" and outcome.status_code is None


def test_redirects_are_not_followed_and_non_2xx_fails() -> None:
    # Given an endpoint answering a redirect, then a server error
    with running_receiver(statuses=[302, 500]) as receiver:
        target = check_target(receiver.url, local_stack=True)
        sender = Sender()
        # When two deliveries are sent / Then both fail with their status, and one request each
        first = sender.post(target, {"webhook-id": "evt_r"}, "{}")
        second = sender.post(target, {"webhook-id": "evt_s"}, "{}")
        assert (first.ok, first.error) == (False, "HTTP 302")
        assert (second.ok, second.error) == (False, "HTTP 500")
        assert len(receiver.received) == 2


def test_closed_port_is_a_connection_error() -> None:
    # Given a port nothing listens on (a receiver that has stopped)
    with running_receiver() as receiver:
        url = receiver.url
    target = check_target(url, local_stack=True)
    # When a delivery is sent / Then a connection error is reported
    outcome = Sender().post(target, {"webhook-id": "evt_c"}, "{}")
    assert not outcome.ok and outcome.error is not None and outcome.error.startswith("connection error")
