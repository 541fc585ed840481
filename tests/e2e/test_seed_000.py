"""Seed 000's experiment, end to end: Timeout 3 s, ExecutionTimeout 60 s, a step body of 10 s.

The four scenarios run at once (each takes about a minute of wall time). Counts come from the
replay record: invocations, body runs per invocation, attempt numbers, final status.
"""

from __future__ import annotations

import itertools
import json

import pytest

from engine.timeline import execution_timeline
from tests.conftest import wait_until

SCENARIOS = {
    "least-default": {"semantics": "AT_LEAST_ONCE_PER_RETRY", "retry": "default"},
    "least-none": {"semantics": "AT_LEAST_ONCE_PER_RETRY", "retry": "none"},
    "most-default": {"semantics": "AT_MOST_ONCE_PER_RETRY", "retry": "default"},
    "most-none": {"semantics": "AT_MOST_ONCE_PER_RETRY", "retry": "none"},
}


@pytest.fixture(scope="module")
def outcomes(stack):
    import engine

    lam = engine.client()
    arns = {
        name: lam.invoke(FunctionName="replay-not-retry", InvocationType="Event", Payload=json.dumps(event))[
            "DurableExecutionArn"
        ]
        for name, event in SCENARIOS.items()
    }

    def all_done():
        return all(lam.get_durable_execution(DurableExecutionArn=a)["Status"] != "RUNNING" for a in arns.values())

    wait_until(all_done, timeout=150, interval=1, message="all four scenarios to end")
    return {name: execution_timeline(arn) for name, arn in arns.items()}


def step_two(timeline):
    return next(op for op in timeline["operations"] if op["name"] == "Step #2")


def body_run_invocations(timeline):
    return [run["invocation_seq"] for run in step_two(timeline)["body_runs"]]


@pytest.mark.parametrize("scenario", ["least-default", "least-none"])
def test_at_least_once_runs_body_in_every_invocation_until_timeout(outcomes, scenario):
    timeline = outcomes[scenario]
    invocations = timeline["invocations"]
    assert timeline["execution"]["status"] == "TIMED_OUT"
    assert len(invocations) >= 3
    # Invocation 1 runs both steps; every later invocation replays step 1 and re-runs step 2.
    ran_step_two = [i["seq"] for i in invocations if i["outcome"] == "timed_out"]
    assert body_run_invocations(timeline)[: len(ran_step_two)] == ran_step_two
    assert all(run["outcome"] == "interrupted" for run in step_two(timeline)["body_runs"])
    # A replay is not a retry: the attempt number never grows and nothing is checkpointed as failed.
    assert {run["attempt"] for run in step_two(timeline)["body_runs"]} == {1}
    # Never finished: the execution timed out while it was still open (not "running" after the end).
    assert [a["outcome"] for a in step_two(timeline)["attempts"]] == ["unfinished"]
    assert all(i["error"]["ErrorType"] == "Sandbox.Timedout" for i in invocations if i["outcome"] == "timed_out")


def test_at_most_once_with_retry_runs_body_every_second_invocation(outcomes):
    timeline = outcomes["most-default"]
    runs = body_run_invocations(timeline)
    attempts = step_two(timeline)["attempts"]
    assert timeline["execution"]["status"] in {"TIMED_OUT", "FAILED"}
    assert len(runs) >= 2
    # Between two body runs there is exactly one invocation, which records StepInterruptedError.
    assert all(later - earlier == 2 for earlier, later in itertools.pairwise(runs))
    interrupted = [a for a in attempts if a["outcome"] == "interrupted"]
    assert interrupted and all(a["close_seq"] not in runs for a in interrupted)
    # Each body run belongs to a new attempt: 1, 2, 3…
    assert [run["attempt"] for run in step_two(timeline)["body_runs"]] == list(range(1, len(runs) + 1))


def test_at_most_once_without_retry_runs_body_exactly_once(outcomes):
    timeline = outcomes["most-none"]
    assert body_run_invocations(timeline) == [1]
    assert timeline["execution"]["status"] == "FAILED"
    # The execution's StepError wraps the step's own failure, StepInterruptedError.
    assert "previously interrupted" in timeline["execution"]["error"]["ErrorMessage"]
    [attempt] = step_two(timeline)["attempts"]
    assert attempt["outcome"] == "interrupted"
    assert attempt["error"]["ErrorType"].endswith("StepInterruptedError")
    assert len(timeline["invocations"]) == 2
