"""`POST /_local/idle?timeout=SECONDS`: waits as long as asked (up to an hour), then says why not."""

from __future__ import annotations

import pytest
import requests

from local.server import MAX_IDLE_TIMEOUT, idle_timeout
from tests.local.conftest import FakeStack


def test_the_timeout_is_taken_as_asked_up_to_an_hour() -> None:
    # Then no timeout is the default 10 s, any other is taken as asked
    assert idle_timeout(None) == (10.0, "")
    assert idle_timeout("130.5") == (130.5, "")
    assert idle_timeout("0") == (0.0, "")
    # And beyond an hour it waits an hour, with a note saying so for the 504
    assert idle_timeout("7200") == (MAX_IDLE_TIMEOUT, " (asked 7200s; /_local/idle waits at most 3600s)")


@pytest.mark.parametrize("asked", ["-1", "abc", "nan", "inf"])
def test_a_timeout_that_is_not_a_number_of_seconds_is_refused(asked: str) -> None:
    with pytest.raises(ValueError, match="number of seconds"):
        idle_timeout(asked)


@pytest.mark.local
def test_idle_waits_for_a_busy_stack_as_long_as_asked(fake_stack: FakeStack) -> None:
    stack = fake_stack.stack
    # Given a queue message whose function takes three seconds
    stack.client("sqs").send_message(QueueUrl=stack.resources()["refs"]["WorkQueue"], MessageBody="sleep:3")

    # When the stack is asked to be idle within half a second
    short = requests.post(stack.url("/_local/idle"), params={"timeout": 0.5}, timeout=30)

    # Then it answers 504, naming the time it waited and the most it would wait
    assert short.status_code == 504
    error = short.json()["error"]
    assert error["code"] == "not_idle" and error["message"] == "still busy after 0.5s"
    assert (error["details"]["timeout"], error["details"]["max_timeout"]) == (0.5, MAX_IDLE_TIMEOUT)

    # When it is asked with more time than any cap the stack used to have
    long = requests.post(stack.url("/_local/idle"), params={"timeout": 7200}, timeout=120)

    # Then it waits for the function to finish and answers idle
    assert long.status_code == 200 and long.json()["idle"] is True
    assert '"sleep:3"' in fake_stack.record_file.read_text()


@pytest.mark.local
def test_idle_refuses_a_bad_timeout_in_the_error_format(fake_stack: FakeStack) -> None:
    response = requests.post(fake_stack.stack.url("/_local/idle"), params={"timeout": "soon"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
