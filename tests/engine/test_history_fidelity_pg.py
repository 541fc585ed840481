"""History fidelity (issue #17 point 7): every event the engine writes has the shape botocore's
``lambda`` model gives ``Event`` and its ``*Details`` structure: every required member there, no
member AWS does not have, each of the model's type. botocore's own validator is the judge.

The events of the real stack (worker, scheduler, SDK) are checked as GetDurableExecutionHistory
returns them; the few endings the handlers here do not reach (a failed step or context, a
cancelled wait, a chained invoke timed out or stopped) are made by the state machine and
returned through the same ``history_event``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

import engine
from engine import api, machine
from engine.machine import Clock, apply_batch
from tests.conftest import Stack, wait_until
from tests.engine.support import Register, callback_ids, event_types, events, settled, start

H = "tests.handlers.engine_pg"
Client = engine.LambdaClient
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}
EVENT_SHAPE = botocore.session.get_session().get_service_model("lambda").shape_for("Event")
ALL_EVENT_TYPES = set(EVENT_SHAPE.members["EventType"].enum)
# The endings the real-stack part does not reach; the machine part makes them.
MADE_BY_THE_MACHINE = {
    "StepFailed",
    "WaitCancelled",
    "ContextFailed",
    "ChainedInvokeTimedOut",
    "ChainedInvokeStopped",
}


def problems(event: dict[str, Any]) -> list[str]:
    """What is wrong with one event as botocore's model describes it (empty if nothing)."""
    found = []
    report = ParamValidator().validate(event, EVENT_SHAPE)
    if report.has_errors():
        found.append(report.generate_report())
    details = [key for key in event if key.endswith("Details")]
    if details != [f"{event['EventType']}Details"]:
        found.append(f"{event['EventType']} carries {details}")
    return [f"{event['EventType']} #{event.get('EventId')}: {p}" for p in found]


def ended(client: Client, arn: str, timeout: float = 60) -> str:
    def check() -> str | None:
        status = client.get_durable_execution(DurableExecutionArn=arn)["Status"]
        return status if status in TERMINAL else None

    return str(wait_until(check, timeout=timeout, message=f"{arn} to end"))


@pytest.fixture(autouse=True)
def _stack(stack: Stack) -> None:
    """The real-stack part runs with the session's worker and scheduler up."""


def test_every_event_the_stack_writes_has_the_models_shape(client: Client, functions: Register) -> None:
    arns = []

    def run(handler: str, payload: dict[str, Any], **register: Any) -> str:
        arn = start(client, functions(f"{H}.{handler}", **register), json.dumps(payload))
        arns.append(arn)
        return arn

    run("steps", {"n": 2})
    run("long_wait", {"seconds": 1})
    run("mapper", {"items": [1, 2]})
    run("poller", {"target": 2})
    run("invoker", {"target": functions(f"{H}.durable_child"), "payload": {"n": 1}})
    run("invoker", {"target": functions(f"{H}.failing_child"), "payload": {"n": 1}})
    run("invoker", {"target": "no-such-function", "payload": {}})
    run("failing_child", {"n": 2})
    timed_out = run("long_wait", {"seconds": 30}, execution_timeout=1)
    answered, rejected = run("parked", {}), run("parked", {})
    run("parked", {"timeout": 1})
    client.send_durable_execution_callback_success(CallbackId=callback_ids(client, answered)[0], Result=b'"ok"')
    client.send_durable_execution_callback_failure(
        CallbackId=callback_ids(client, rejected)[0], Error={"ErrorType": "No", "ErrorMessage": "refused"}
    )
    held = run("long_wait", {"seconds": 30})
    wait_until(lambda: "WaitStarted" in event_types(client, held), message="WaitStarted")
    settled(held)
    client.pause_durable_execution(DurableExecutionArn=held, Reason="look")
    client.resume_durable_execution(DurableExecutionArn=held, Reason="looked")
    client.stop_durable_execution(DurableExecutionArn=held)
    for arn in arns:
        ended(client, arn)
    assert ended(client, timed_out) == "TIMED_OUT"
    seen: set[str] = set()
    found: list[str] = []
    for arn in arns:
        for with_data in (True, False):
            for event in events(client, arn, data=with_data):
                seen.add(event["EventType"])
                found += problems(event)
    assert found == []
    assert seen == ALL_EVENT_TYPES - MADE_BY_THE_MACHINE, sorted(ALL_EVENT_TYPES - MADE_BY_THE_MACHINE - seen)


NOW = datetime(2026, 12, 1, tzinfo=UTC)
ERROR = {"ErrorType": "ValueError", "ErrorMessage": "declined", "StackTrace": ["line 1"]}


def _machine_events() -> list[dict[str, Any]]:
    clock = Clock(NOW)
    docs: dict[str, dict[str, Any]] = {}
    made: list[dict[str, Any]] = []

    def apply(*updates: dict[str, Any]) -> None:
        change = apply_batch(docs, list(updates), clock, lambda op_id: f"cb-{op_id}")
        docs.update(change.ops)
        made.extend(change.events)

    step = {"Type": "STEP", "SubType": "Step", "Name": "charge"}
    apply({"Id": "s1", "Action": "START", **step})
    apply({"Id": "s1", "Action": "RETRY", "Error": ERROR, "StepOptions": {"NextAttemptDelaySeconds": 5}, **step})
    apply({"Id": "s2", "Action": "START", **step}, {"Id": "s2", "Action": "FAIL", "Error": ERROR, **step})
    apply({"Id": "w1", "Type": "WAIT", "SubType": "Wait", "Action": "START", "WaitOptions": {"WaitSeconds": 9}})
    apply({"Id": "w1", "Type": "WAIT", "SubType": "Wait", "Action": "CANCEL"})
    context = {"Type": "CONTEXT", "SubType": "RunInChildContext", "Name": "child"}
    apply({"Id": "x1", "Action": "START", **context}, {"Id": "x1", "Action": "FAIL", "Error": ERROR, **context})
    for op_id, status in (("i1", "TIMED_OUT"), ("i2", "STOPPED")):
        options = {"FunctionName": "billing", "TenantId": "tenant-1"}
        apply({"Id": op_id, "Type": "CHAINED_INVOKE", "Action": "START", "ChainedInvokeOptions": options})
        change = machine.complete_chained_invoke(docs[op_id], clock, status=status, error=ERROR)
        made.extend(change.events)
    return made


def test_every_event_the_machine_makes_has_the_models_shape() -> None:
    made = _machine_events()
    shown = [
        api.history_event({"doc": event, "event_id": n, "timestamp": NOW}, include_data)
        for n, event in enumerate(made, 1)
        for include_data in (True, False)
    ]
    assert [p for event in shown for p in problems(event)] == []
    assert {event["EventType"] for event in shown} >= MADE_BY_THE_MACHINE
    started = next(e for e in shown if e["EventType"] == "ChainedInvokeStarted")["ChainedInvokeStartedDetails"]
    assert started["ExecutedVersion"] == "$LATEST" and started["TenantId"] == "tenant-1"
    retried = next(e for e in shown if e["EventType"] == "StepFailed")["StepFailedDetails"]
    assert retried["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 5}


def test_the_validator_catches_a_wrong_event() -> None:
    """The judge can fail: a missing required member, an unknown one, a wrong type."""
    event = {"EventType": "StepSucceeded", "EventId": 1, "EventTimestamp": NOW}
    assert problems({**event, "StepSucceededDetails": {"Result": {"Truncated": False}}})
    assert problems({**event, "StepSucceededDetails": {"Result": {}, "RetryDetails": {}, "Attempt": 1}})
    assert problems({**event, "EventId": "1", "StepSucceededDetails": {"Result": {}, "RetryDetails": {}}})
    assert problems({**event, "StepStartedDetails": {}, "StepSucceededDetails": {"Result": {}, "RetryDetails": {}}})
    assert problems({**event, "StepSucceededDetails": {"Result": {}, "RetryDetails": {}}}) == []
