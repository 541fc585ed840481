"""History on the wire: every event's fields as botocore's model describes them, nothing lost in transit.

Executions that leave most event types behind are read twice: from ``engine.client()`` in
process and through boto3 over HTTP. The wire must carry every field the engine writes (a field
the model does not know would be dropped silently), each event's details must hold the members
AWS marks required, and both reads must agree.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

import engine
from tests.conftest import wait_until
from tests.wire.conftest import callback_id, finished
from wire.model import service_model

SDK = "tests.handlers.engine_sdk"
PG = "tests.handlers.engine_pg"


def unknown_fields(value: Any, shape: Any, path: str) -> list[str]:
    """Paths in ``value`` the model's ``shape`` has no member for."""
    if shape.type_name == "structure" and isinstance(value, dict):
        found = [f"{path}.{key}" for key in value if key not in shape.members]
        for key, item in value.items():
            if key in shape.members:
                found += unknown_fields(item, shape.members[key], f"{path}.{key}")
        return found
    if shape.type_name == "list" and isinstance(value, list):
        return [p for index, item in enumerate(value) for p in unknown_fields(item, shape.member, f"{path}[{index}]")]
    return []


def missing_required(event: dict[str, Any]) -> list[str]:
    details_name = f"{event['EventType']}Details"
    shape = service_model().shape_for("Event").members[details_name]
    details = event.get(details_name)
    if details is None:
        return [details_name] if shape.required_members else []
    return [f"{details_name}.{member}" for member in shape.required_members if member not in details]


def comparable(value: Any) -> Any:
    """Timestamps to the millisecond (the wire sends epoch seconds), everything else as is."""
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


@pytest.fixture(scope="module")
def executions(lambda_client: Any, wire_user: Any) -> list[str]:
    """Finished executions between them leaving most of AWS's event types in their histories."""
    created: list[str] = []

    def function(handler: str, **fields: Any) -> str:
        name = f"w-fid-{handler.rsplit('.', 1)[1].replace('_', '-')}-{len(created)}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role="arn:aws:iam::123456789012:role/durable-lab",
            Handler=handler,
            Code={},
            DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
            **fields,
        )
        created.append(name)
        return name

    def start(name: str, payload: Any) -> str:
        arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
        return str(arn["DurableExecutionArn"])

    child, failing = function(f"{PG}.durable_child"), function(f"{PG}.failing_child")
    arns = [
        start(function(f"{PG}.invoker"), {"target": child, "payload": {"n": 2}}),
        start(function(f"{PG}.invoker"), {"target": failing, "payload": {"n": 3}}),
        start(function(f"{SDK}.raises_value_error"), {}),
        start(function(f"{PG}.long_wait"), {"seconds": 1}),
        start(function(f"{PG}.parked"), {"timeout": 1}),
    ]
    answered = start(function(f"{PG}.parked"), {})
    lambda_client.send_durable_execution_callback_failure(
        CallbackId=callback_id(lambda_client, answered), Error={"ErrorType": "No", "ErrorMessage": "refused"}
    )
    every = start(function(f"{SDK}.every_kind"), {})
    wait_until(
        lambda: any(
            e["EventType"] == "WaitStarted"
            for e in lambda_client.get_durable_execution_history(DurableExecutionArn=every)["Events"]
        ),
        message="every_kind to reach its long wait",
    )
    lambda_client.stop_durable_execution(DurableExecutionArn=every, Error={"ErrorMessage": "enough"})
    arns += [answered, every]
    for arn in arns:
        finished(lambda_client, arn, timeout=90)
    return arns


def engine_events(arn: str) -> list[dict[str, Any]]:
    return engine.client().get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)["Events"]


def test_wire_history_carries_every_field_the_engine_writes(lambda_client: Any, executions: list[str]) -> None:
    event_shape = service_model().shape_for("Event")
    seen_types: set[str] = set()
    for arn in executions:
        written = engine_events(arn)
        wire = lambda_client.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)
        for event in written:
            seen_types.add(event["EventType"])
            assert unknown_fields(event, event_shape, event["EventType"]) == [], event
            assert missing_required(event) == [], event
        assert comparable(wire["Events"]) == comparable(written), arn
    expected = {
        "ExecutionStarted",
        "ExecutionSucceeded",
        "ExecutionFailed",
        "ExecutionStopped",
        "ContextStarted",
        "ContextSucceeded",
        "WaitStarted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "StepFailed",
        "ChainedInvokeStarted",
        "ChainedInvokeSucceeded",
        "ChainedInvokeFailed",
        "CallbackStarted",
        "CallbackFailed",
        "CallbackTimedOut",
        "InvocationCompleted",
    }
    assert expected <= seen_types, expected - seen_types


def test_chained_invoke_started_carries_executed_version(lambda_client: Any, executions: list[str]) -> None:
    started = [
        e
        for arn in executions
        for e in lambda_client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        if e["EventType"] == "ChainedInvokeStarted"
    ]
    assert started and all(e["ChainedInvokeStartedDetails"].get("ExecutedVersion") == "$LATEST" for e in started)
