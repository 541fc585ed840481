"""GetDurableExecutionState and CheckpointDurableExecution over HTTP, with a real CheckpointToken.

The test takes the invocation's lease itself, as the worker's invoker does (``claim_invocation``),
so the token is one the engine really handed out; boto3 then reads and checkpoints through the
web server, and the checkpoint duty's own checks decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import engine
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.unit import current_dispatcher, set_dispatcher
from tests.engine.support import Recorder
from tests.wire.conftest import history

PG = "tests.handlers.engine_pg"


@pytest.fixture
def claimed(make_function: Any) -> Iterator[Ticket]:
    """An execution started in this process with no message queued, and its invocation claimed here."""
    name = make_function(f"{PG}.parked")
    saved = current_dispatcher()
    recorder = Recorder()
    engine.configure(dispatcher=recorder)
    try:
        engine.client().invoke(FunctionName=name, InvocationType="Event", Payload=b'{"k": 1}')
    finally:
        set_dispatcher(saved)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    yield ticket


def test_state_then_step_checkpoint_lands_in_history(lambda_client: Any, claimed: Ticket) -> None:
    arn, token = claimed.arn, claimed.token
    state = lambda_client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken=token)
    (execution_op,) = state["Operations"]
    assert execution_op["Type"] == "EXECUTION" and execution_op["Id"] == arn.rsplit("/", 1)[1]
    assert json.loads(execution_op["ExecutionDetails"]["InputPayload"]) == {"k": 1}

    answer = lambda_client.checkpoint_durable_execution(
        DurableExecutionArn=arn,
        CheckpointToken=token,
        ClientToken="c-1",
        Updates=[
            {"Id": "step-1", "Type": "STEP", "Action": "START", "Name": "charge"},
            {"Id": "step-1", "Type": "STEP", "Action": "SUCCEED", "Name": "charge", "Payload": "42"},
        ],
    )
    new_token = answer["CheckpointToken"]
    assert new_token != token
    (step,) = [op for op in answer["NewExecutionState"]["Operations"] if op["Id"] == "step-1"]
    assert (step["Status"], step["StepDetails"]["Result"]) == ("SUCCEEDED", "42")

    events = history(lambda_client, arn, IncludeExecutionData=True)
    started = [e for e in events if e["EventType"] == "StepStarted"]
    succeeded = [e for e in events if e["EventType"] == "StepSucceeded"]
    assert [e["Id"] for e in started] == ["step-1"] and started[0]["Name"] == "charge"
    assert succeeded[0]["StepSucceededDetails"]["Result"]["Payload"] == "42"

    # The token rotated: the old one is refused with the exact message the SDK retries on.
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=token, Updates=[])
    assert caught.value.response["Error"]["Message"] == "Invalid checkpoint token"
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken=token)

    paged = lambda_client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken=new_token, MaxItems=1)
    assert len(paged["Operations"]) == 1 and "NextMarker" in paged
    rest = lambda_client.get_durable_execution_state(
        DurableExecutionArn=arn, CheckpointToken=new_token, Marker=paged["NextMarker"]
    )
    assert {op["Id"] for op in paged["Operations"] + rest["Operations"]} == {execution_op["Id"], "step-1"}


def test_a_batch_the_duty_refuses_changes_nothing(lambda_client: Any, claimed: Ticket) -> None:
    arn, token = claimed.arn, claimed.token
    before = history(lambda_client, arn)
    for updates in (
        [{"Id": "s", "Type": "STEP", "Action": "EXPLODE"}],  # no such action
        [{"Id": "s", "Type": "TELEPORT", "Action": "START"}],  # no such operation type
        [{"Id": "s", "Type": "STEP", "Action": "START", "Payload": "nul\x00byte"}],  # not storable
    ):
        with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
            lambda_client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=token, Updates=updates)
    assert history(lambda_client, arn) == before
    # The token was not spent by the refusals: a good batch still lands with it.
    lambda_client.checkpoint_durable_execution(
        DurableExecutionArn=arn, CheckpointToken=token, Updates=[{"Id": "s", "Type": "STEP", "Action": "START"}]
    )
    assert [e["EventType"] for e in history(lambda_client, arn)][-1] == "StepStarted"
