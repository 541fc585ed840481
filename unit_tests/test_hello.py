"""A step, a wait, a step: the duties on the memory store, driven by the real SDK."""

from __future__ import annotations

import json

from unit_tests.scenarios import Driver

HELLO_EVENTS = [
    "ExecutionStarted",
    "StepStarted",
    "StepSucceeded",
    "WaitStarted",
    "InvocationCompleted",
    "WaitSucceeded",
    "StepStarted",
    "StepSucceeded",
    "InvocationCompleted",
    "ExecutionSucceeded",
]


def test_step_wait_step(run: Driver) -> None:
    arn = run.start(run.register("hello", "demos.hello.handler"), {"name": "Ada", "wait_seconds": 5})
    assert run.run_owed() == 1
    assert run.execution(arn)["Status"] == "RUNNING"  # suspended on the wait
    assert run.advance(4) == 0  # not due yet
    assert run.advance(1) == 1
    assert run.run_owed() == 1
    execution = run.execution(arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"greeting": "Hello, Ada!", "loud": "HELLO, ADA!"}
    assert run.history(arn) == HELLO_EVENTS
