"""Invocations as real processes: kills, crashes, whole-worker loss, faults, duplicates, logs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time

import pytest

from engine import faults
from engine.celery_tasks import CeleryDispatcher
from engine.timeline import execution_timeline, invocation_logs
from tests.conftest import wait_until
from tests.truth import assert_truthful

HANDLER = "tests.handlers.invocations.three_steps"


@pytest.fixture
def function(lam, unique):
    name = f"inv-{unique}"
    lam.create_function(
        FunctionName=name,
        Handler=HANDLER,
        Timeout=30,
        DurableConfig={"ExecutionTimeout": 120, "RetentionPeriodInDays": 1},
    )
    return name


def start(lam, function, **event):
    return lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))["DurableExecutionArn"]


def running_invocation(arn):
    invocations = execution_timeline(arn)["invocations"]
    return invocations[-1] if invocations and invocations[-1]["ended_at"] is None else None


def body_started(arn, name):
    def check():
        ops = execution_timeline(arn)["operations"]
        return any(op["name"] == name and op["status"] == "STARTED" for op in ops) and running_invocation(arn)

    wait_until(check, timeout=30, message=f"step {name} to start")
    time.sleep(0.3)  # let the body get going past its effect record


def finished(lam, arn, timeout=90):
    wait_until(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING",
        timeout=timeout,
        message="execution to end",
    )
    data = execution_timeline(arn)
    assert_truthful(data)  # every fault test leaves a truthful picture
    return data


def op(timeline, name):
    return next(o for o in timeline["operations"] if o["name"] == name)


def test_worker_child_killed_from_outside_recovers(lam, function):
    arn = start(lam, function, sleep=2)
    body_started(arn, "B")
    os.kill(running_invocation(arn)["pid"], signal.SIGKILL)
    timeline = finished(lam, arn)
    assert timeline["execution"]["status"] == "SUCCEEDED"
    first, *rest = timeline["invocations"]
    assert first["outcome"] == "crashed" and first["error"]["ErrorType"] == "Runtime.ExitError"
    assert rest[0]["reason"] == "recovery"
    # At-least-once: B's body ran again in the same attempt; A was replayed, not re-run.
    assert [(r["invocation_seq"], r["attempt"], r["outcome"]) for r in op(timeline, "B")["body_runs"]] == [
        (1, 1, "interrupted"),
        (2, 1, "succeeded"),
    ]
    assert len(op(timeline, "A")["body_runs"]) == 1
    assert [r["invocation_seq"] for r in op(timeline, "A")["replays"]] == [2]
    history = lam.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)["Events"]
    completed = [e for e in history if e["EventType"] == "InvocationCompleted"]
    assert completed[0]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == "Runtime.ExitError"


def test_whole_worker_killed_mid_execution_completes_after_restart(lam, function, stack):
    arn = start(lam, function, sleep=3)
    body_started(arn, "B")
    try:
        stack.stop_worker(signal.SIGKILL)  # every worker process dies at once
        time.sleep(1.5)
        assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    finally:
        stack.start_worker()
    timeline = finished(lam, arn)
    assert timeline["execution"]["status"] == "SUCCEEDED"
    assert json.loads(timeline["execution"]["result"]) == {"results": ["a", "b", "c"]}
    # Nothing ran more often than at-least-once allows: A once, B twice (interrupted + rerun), C once.
    runs = {name: len(op(timeline, name)["body_runs"]) for name in "ABC"}
    assert runs == {"A": 1, "B": 2, "C": 1}
    charges = [e for e in timeline["effects"] if e["kind"] == "charge"]
    assert [e["duplicate"] for e in charges] == [False, True]


def test_redelivered_messages_never_run_two_invocations_at_once(lam, function):
    arn = start(lam, function, sleep=2)
    body_started(arn, "B")
    execution_id = running_invocation(arn) and _execution_id(arn)
    for _ in range(5):  # what a broker redelivery or a duplicate dispatch looks like
        CeleryDispatcher().invoke(execution_id, 30)
    timeline = finished(lam, arn)
    invocations = timeline["invocations"]
    assert timeline["execution"]["status"] == "SUCCEEDED"
    for earlier, later in itertools.pairwise(invocations):
        assert earlier["ended_at"] <= later["started_at"]
    assert len(op(timeline, "B")["body_runs"]) == 1


def _execution_id(arn):
    from engine import db
    from engine.store import store

    with db.transaction() as conn:
        return store.execution_by_arn(conn, arn)["id"]


def test_kill_now_is_recorded_as_killed_and_replayed(lam, function):
    arn = start(lam, function, sleep=2)
    body_started(arn, "B")
    fault = faults.kill_now(arn, user="tester")
    assert fault["invocation_seq"] == 1
    timeline = finished(lam, arn)
    assert timeline["invocations"][0]["outcome"] == "killed"
    assert timeline["execution"]["status"] == "SUCCEEDED"
    assert [f["phase"] for f in timeline["faults"]] == ["now"]


@pytest.mark.parametrize(
    ("phase", "key", "duplicates"),
    [("after_body", None, [False, True]), ("after_body", "idem-1", [False, False]), ("body_start", None, [False])],
)
def test_armed_fault_kills_at_the_chosen_point(lam, function, phase, key, duplicates, unique):
    event = {"sleep": 0.2}
    if key:
        event["idempotency_key"] = f"{key}-{unique}"
    arn = start(lam, function, **event, a_sleep=1.5)
    # Armed while invocation 1 runs step A: the running invocation must pick it up for step B.
    body_started(arn, "A")
    faults.arm(arn, "B", phase, user="tester")
    timeline = finished(lam, arn)
    assert timeline["execution"]["status"] == "SUCCEEDED"
    fired = [f for f in timeline["faults"] if f["fired_at"] is not None]
    assert len(fired) == 1 and fired[0]["phase"] == phase
    assert fired[0]["invocation_seq"] == 1
    killed = [i for i in timeline["invocations"] if i["outcome"] == "killed"]
    assert [i["seq"] for i in killed] == [fired[0]["invocation_seq"]]
    charges = [e for e in timeline["effects"] if e["kind"] == "charge"]
    assert [e["duplicate"] for e in charges] == duplicates
    if key:
        assert [e["performed"] for e in charges] == [True, False]


def test_invocation_logs_carry_the_execution_and_invocation(lam, function):
    arn = start(lam, function, sleep=0.1)
    finished(lam, arn)
    lines = invocation_logs(arn)
    assert any("step B body starts, attempt 1" in line["message"] for line in lines)
    worked = [line for line in lines if line["message"] == "step B is working"]
    assert worked and worked[0]["op_id"] == op(execution_timeline(arn), "B")["op_id"]
    assert all(line["durableExecutionArn"] == arn and line["invocation_seq"] >= 1 for line in lines)


def test_timeout_kills_the_invocation_and_execution_times_out(lam, unique):
    name = f"slow-{unique}"
    lam.create_function(
        FunctionName=name, Handler=HANDLER, Timeout=1, DurableConfig={"ExecutionTimeout": 6, "RetentionPeriodInDays": 1}
    )
    arn = start(lam, name, sleep=5)
    timeline = finished(lam, arn, timeout=40)
    assert timeline["execution"]["status"] == "TIMED_OUT"
    timed_out = [i for i in timeline["invocations"] if i["outcome"] == "timed_out"]
    assert timed_out and all(i["error"]["ErrorType"] == "Sandbox.Timedout" for i in timed_out)
    # Killed at the Timeout: each invocation lasted about 1 s, far less than the 5 s body.
    assert all((i["ended_at"] - i["started_at"]).total_seconds() < 4 for i in timed_out)
