"""The unchanged Python SDK, outside any worker, checkpoints through the web server with boto3.

The test plays the Lambda service's part in-process: it claims the invocation (the engine hands
out the token), passes the SDK the JSON event Lambda would, and records the invocation's end.
Everything between (the SDK's GetDurableExecutionState/CheckpointDurableExecution calls) goes
over HTTP through ``boto3.client("lambda", endpoint_url=…)``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution

import engine
from engine.duties.claim import claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.unit import current_dispatcher, set_dispatcher
from tests.engine.support import Recorder
from tests.wire.conftest import history


class Context:
    """What the SDK reads from Lambda's context object."""

    aws_request_id = "wire-sdk-test"
    tenant_id = None

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_sdk_handler_checkpoints_over_http(lambda_client: Any, make_function: Any) -> None:
    name = make_function("tests.handlers.engine_pg.steps")
    saved = current_dispatcher()
    recorder = Recorder()
    engine.configure(dispatcher=recorder)
    try:
        arn = engine.client().invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 21}')[
            "DurableExecutionArn"
        ]
    finally:
        set_dispatcher(saved)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None

    @durable_execution(boto3_client=lambda_client)
    def handler(event: dict[str, Any], context: DurableContext) -> dict[str, int]:
        doubled = context.step(lambda _: event["n"] * 2, name="double")
        return {"doubled": context.step(lambda _: doubled + 0, name="again")}

    event = json.loads(
        json.dumps(
            {
                "DurableExecutionArn": ticket.arn,
                "CheckpointToken": ticket.token,
                "InitialExecutionState": {"Operations": ticket.operations, "NextMarker": ""},
            }
        )
    )
    output = handler(event, Context())
    assert output["Status"] == "SUCCEEDED", output
    complete_invocation(ticket, output, None)

    described = lambda_client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "SUCCEEDED" and json.loads(described["Result"]) == {"doubled": 42}
    steps = [(e["EventType"], e["Name"]) for e in history(lambda_client, arn) if e["EventType"].startswith("Step")]
    assert steps == [
        ("StepStarted", "double"),
        ("StepSucceeded", "double"),
        ("StepStarted", "again"),
        ("StepSucceeded", "again"),
    ]
