"""Seed 003: plain functions invoked with Event are retried twice (1 min, then 2 min), then dead-lettered."""

from __future__ import annotations

import itertools
import json
from datetime import datetime

import pytest

import engine
from engine import async_invoke
from lab import services
from tests.conftest import wait_until

HANDLER = "demos.async_retry.handler"


@pytest.fixture
def receipt(lam, unique):
    """A fresh receipt function with Lambda's default two retries."""
    name = f"receipt-{unique}"
    lam.create_function(FunctionName=name, Handler=HANDLER, Timeout=5)
    return name


def settled(request_id: str, timeout: float = 60) -> dict:
    def done():
        row = async_invoke.get_by_request_id(request_id)
        return row if row["status"] in {"SUCCEEDED", "DEAD_LETTERED", "FAILED"} else None

    return wait_until(done, timeout=timeout, interval=0.2, message=f"async invocation {request_id} to settle")


def gaps(row: dict) -> list[float]:
    attempts = row["attempts"]
    return [
        (datetime.fromisoformat(b["started_at"]) - datetime.fromisoformat(a["ended_at"])).total_seconds()
        for a, b in itertools.pairwise(attempts)
    ]


def test_transient_outage_is_outlived_by_the_second_retry(receipt):
    # Scaled by 0.05: retries after 3 s and 6 s; the 90 s outage lasts 4.5 s.
    request_id = services.async_event(user=None, function_name=receipt, scenario="outage", time_scale=0.05)
    row = settled(request_id)
    assert row["status"] == "SUCCEEDED"
    assert [a["outcome"] for a in row["attempts"]] == ["failed", "failed", "succeeded"]
    assert all(a["error"] is None or "MailServiceUnavailable" in a["error"]["ErrorType"] for a in row["attempts"])
    # Lambda's delays, scaled: 60 s x 0.05 = 3 s, then 120 s x 0.05 = 6 s.
    first, second = gaps(row)
    assert 2.9 <= first < 5 and 5.9 <= second < 8
    # One event, one request id, across all its retries.
    assert json.loads(row["result"])["request_id"] == request_id


def test_poison_event_goes_to_the_dead_letter_queue_then_redrives_after_the_fix(lam):
    try:
        request_id = services.async_event(user=None, function_name="async-receipt", scenario="poison", time_scale=0.01)
        dead = settled(request_id)
        assert dead["status"] == "DEAD_LETTERED"
        assert dead["attempt_count"] == 3 and dead["dead_lettered_at"] is not None
        assert "UnknownTemplate" in dead["error"]["ErrorType"]
        assert dead["id"] in [row["id"] for row in async_invoke.dead_letters(function_name="async-receipt")]
        services.receipt_fix(user=None, deployed=True)
        redriven = services.dead_letter_redrive(user=None, invocation_id=dead["id"])
        again = services.dead_letter_redrive(user=None, invocation_id=dead["id"])
        assert again["id"] == redriven["id"], "a second redrive click sends the event once"
        done = settled(redriven["request_id"])
        assert done["status"] == "SUCCEEDED" and done["attempt_count"] == 1
        assert done["redrive_of_id"] == dead["id"] and done["payload"] == dead["payload"]
        source = async_invoke.get(dead["id"])
        assert source["redriven_at"] is not None
        assert source["status"] == "REDRIVEN", "a successful redrive takes the event out of the queue"
    finally:
        services.receipt_fix(user=None, deployed=False)


def test_maximum_retry_attempts_zero_dead_letters_after_one_try(stack):
    request_id = services.async_event(
        user=None, function_name="async-receipt-no-retry", scenario="poison", time_scale=0.01
    )
    row = settled(request_id)
    assert row["status"] == "DEAD_LETTERED"
    assert row["max_attempts"] == 1 and len(row["attempts"]) == 1


def test_request_response_is_never_retried(receipt):
    outcome = services.async_sync_call(user=None, function_name=receipt, scenario="poison")
    assert outcome["function_error"] == "Unhandled"
    assert "UnknownTemplateError" in json.loads(outcome["payload"])["errorType"]
    assert async_invoke.dead_letters(function_name=receipt) == [], "a synchronous error goes back to the caller"
    from engine.contrib.django.models import AsyncInvocation

    [row] = AsyncInvocation.objects.filter(function_name=receipt)
    assert (row.invocation_type, row.status, row.attempt_count) == ("RequestResponse", "FAILED", 1)


def test_healthy_event_succeeds_on_the_first_attempt(receipt):
    response = engine.client().invoke(FunctionName=receipt, InvocationType="Event", Payload=b'{"order": "o-1"}')
    assert response["StatusCode"] == 202
    row = settled(response["ResponseMetadata"]["RequestId"])
    assert row["status"] == "SUCCEEDED" and row["attempt_count"] == 1


def test_redrive_refuses_an_event_that_is_not_dead_lettered(receipt):
    response = engine.client().invoke(FunctionName=receipt, InvocationType="Event", Payload=b'{"order": "o-2"}')
    row = settled(response["ResponseMetadata"]["RequestId"])
    with pytest.raises(engine.errors.InvalidParameterValueException, match="Only dead-lettered events"):
        async_invoke.redrive(row["id"])


@pytest.mark.parametrize("bad", ["7", 0, -1, True, 2**63, None])
def test_client_redrive_refuses_an_invocation_id_that_is_not_a_positive_integer(bad):
    with pytest.raises(engine.errors.InvalidParameterValueException, match="InvocationId must be a positive integer"):
        engine.client().redrive_async_invocation(InvocationId=bad)


def test_client_redrive_of_an_unknown_invocation_is_not_found(lam):
    with pytest.raises(engine.errors.ResourceNotFoundException, match="Asynchronous invocation not found"):
        lam.redrive_async_invocation(InvocationId=2**62)
