"""Pause, resume and delete (AWS's PauseDurableExecution, ResumeDurableExecution,
DeleteDurableExecution) on real PostgreSQL, with the real Celery worker and scheduler."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import engine
from engine import db
from engine.duties.checkpoint import checkpoint
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.pause import PAUSED_TIMEOUT_CAP
from engine.duties.sweep import mark_invocation_lost
from engine.errors import InvalidCheckpointTokenError, ResourceConflictException, ResourceNotFoundException
from engine.store.postgres import RETAINED_TABLES
from tests.conftest import Stack, wait_until
from tests.engine.support import (
    Recorder,
    Register,
    callback_ids,
    event_types,
    events,
    execution_row,
    invocations,
    op_named,
    settled,
    start,
    stored_ops,
)
from tests.truth import assert_truthful

H = "tests.handlers.engine_pg"
Client = engine.LambdaClient
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}


@pytest.fixture(autouse=True)
def _stack(stack: Stack) -> None:
    """Every test here runs with the session's worker and scheduler up."""


def status(client: Client, arn: str) -> str:
    return str(client.get_durable_execution(DurableExecutionArn=arn)["Status"])


def ended(client: Client, arn: str, timeout: float = 60) -> dict[str, object]:
    def check() -> dict[str, object] | None:
        described = client.get_durable_execution(DurableExecutionArn=arn)
        return described if described["Status"] in TERMINAL else None

    return wait_until(check, timeout=timeout, message=f"{arn} to end")  # type: ignore[no-any-return]


def timeout_due(arn: str) -> datetime | None:
    with db.transaction() as conn:
        row = conn.execute(
            """SELECT t.due_at FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
               WHERE e.arn = %s AND t.kind = 'execution_timeout'""",
            (arn,),
        ).fetchone()
    return row["due_at"] if row else None


def suspended_in_wait(client: Client, functions: Register, seconds: float) -> str:
    arn = start(client, functions(f"{H}.long_wait"), json.dumps({"seconds": seconds}))
    wait_until(lambda: "WaitStarted" in event_types(client, arn), message="WaitStarted")
    settled(arn)
    return arn


def test_a_wait_that_comes_due_while_paused_completes_but_invokes_only_on_resume(
    client: Client, functions: Register
) -> None:
    arn = suspended_in_wait(client, functions, 1.5)
    assert client.pause_durable_execution(DurableExecutionArn=arn, Reason="maintenance") == {}
    assert status(client, arn) == "PAUSED"
    # AWS: "pending operations such as waits and callbacks continue to complete" while paused.
    wait_until(lambda: op_named(arn, "long")["Status"] == "SUCCEEDED", message="the wait to complete")
    time.sleep(1.5)  # time enough for the scheduler and the worker to invoke, were it allowed
    assert len(invocations(arn)) == 1
    assert status(client, arn) == "PAUSED"
    assert execution_row(arn)["needs_invoke"]  # owed, and sent on resume
    assert_truthful(arn)
    assert client.resume_durable_execution(DurableExecutionArn=arn, Reason="done") == {}
    described = ended(client, arn)
    assert described["Status"] == "SUCCEEDED" and described["Result"] == '"woke"'
    assert len(invocations(arn)) == 2
    history = events(client, arn)
    assert [e["EventType"] for e in history] == [
        "ExecutionStarted",
        "WaitStarted",
        "InvocationCompleted",
        "ExecutionPaused",
        "WaitSucceeded",
        "ExecutionResumed",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    paused, resumed = history[3], history[5]
    assert paused["Id"] == resumed["Id"] == arn.rsplit("/", 1)[1]
    assert paused["ExecutionPausedDetails"]["ExecutionTimeoutPaused"] is True
    assert paused["ExecutionPausedDetails"]["Reason"] == {"Payload": "maintenance", "Truncated": False}
    assert isinstance(paused["ExecutionPausedDetails"]["PauseRequestTimestamp"], datetime)
    assert resumed["ExecutionResumedDetails"]["Reason"] == {"Payload": "done", "Truncated": False}
    assert isinstance(resumed["ExecutionResumedDetails"]["ResumeRequestTimestamp"], datetime)
    without_data = events(client, arn, data=False)
    assert without_data[3]["ExecutionPausedDetails"]["Reason"] == {"Truncated": True}
    assert_truthful(arn)


def test_resuming_with_nothing_owed_leaves_the_execution_waiting(client: Client, functions: Register) -> None:
    arn = suspended_in_wait(client, functions, 3)
    client.pause_durable_execution(DurableExecutionArn=arn)
    client.resume_durable_execution(DurableExecutionArn=arn)
    assert status(client, arn) == "RUNNING"
    assert len(invocations(arn)) == 1  # "Otherwise, the execution continues to wait"
    assert ended(client, arn)["Status"] == "SUCCEEDED"


def test_a_paused_execution_timeout_is_held_and_moved_on_by_the_pause(client: Client, functions: Register) -> None:
    arn = suspended_in_wait(client, functions, 30)
    due = timeout_due(arn)
    assert due is not None
    client.pause_durable_execution(DurableExecutionArn=arn)
    assert timeout_due(arn) == execution_row(arn)["started_at"] + PAUSED_TIMEOUT_CAP
    time.sleep(0.5)
    client.resume_durable_execution(DurableExecutionArn=arn)
    moved = timeout_due(arn)
    assert moved is not None and due + timedelta(seconds=0.5) <= moved < due + timedelta(seconds=5)
    client.stop_durable_execution(DurableExecutionArn=arn)


def test_a_pause_that_does_not_hold_the_timeout_leaves_it(client: Client, functions: Register) -> None:
    arn = suspended_in_wait(client, functions, 30)
    due = timeout_due(arn)
    client.pause_durable_execution(DurableExecutionArn=arn, ExecutionTimeoutPaused=False)
    assert timeout_due(arn) == due
    paused = next(e for e in events(client, arn) if e["EventType"] == "ExecutionPaused")
    assert paused["ExecutionPausedDetails"]["ExecutionTimeoutPaused"] is False
    client.stop_durable_execution(DurableExecutionArn=arn)


def test_pausing_a_running_invocation_stops_it_at_its_next_checkpoint(
    client: Client, functions: Register, tmp_path: Path
) -> None:
    path = str(tmp_path / "hold")
    arn = start(client, functions(f"{H}.holding"), json.dumps({"path": path}))
    wait_until(lambda: Path(path + ".entered").exists(), message="hold step entered")
    wait_until(lambda: "StepStarted" in event_types(client, arn), message="hold START checkpointed")
    client.pause_durable_execution(DurableExecutionArn=arn)
    assert status(client, arn) == "PAUSING"  # an invocation is at work
    Path(path + ".release").touch()
    wait_until(lambda: "InvocationCompleted" in event_types(client, arn), message="invocation end")
    settled_row = wait_until(lambda: (r := execution_row(arn)) and not r["running"] and r, message="lease released")
    assert status(client, arn) == "PAUSED"
    # Its checkpoint was kept (the step succeeded) but answered without a token: "after" never ran.
    assert op_named(arn, "hold")["Status"] == "SUCCEEDED"
    assert not Path(path + ".after").exists()
    assert settled_row["needs_invoke"]
    history = events(client, arn, data=False)
    assert [e["EventType"] for e in history] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "ExecutionPaused",
        "InvocationCompleted",
    ]
    assert "Error" not in history[-1]["InvocationCompletedDetails"]  # PENDING, not a failure
    time.sleep(1)
    assert len(invocations(arn)) == 1
    client.resume_durable_execution(DurableExecutionArn=arn)
    described = ended(client, arn)
    assert described["Status"] == "SUCCEEDED" and json.loads(str(described["Result"])) == ["held", "after"]
    assert_truthful(arn)


def test_resuming_a_pausing_execution_cancels_the_pause(client: Client, functions: Register, tmp_path: Path) -> None:
    path = str(tmp_path / "hold")
    arn = start(client, functions(f"{H}.holding"), json.dumps({"path": path}))
    wait_until(lambda: "StepStarted" in event_types(client, arn), message="hold START checkpointed")
    client.pause_durable_execution(DurableExecutionArn=arn)
    client.resume_durable_execution(DurableExecutionArn=arn)
    Path(path + ".release").touch()
    assert ended(client, arn)["Status"] == "SUCCEEDED"
    types = event_types(client, arn)
    assert "ExecutionPaused" not in types and "ExecutionResumed" not in types
    assert len(invocations(arn)) == 1


def test_a_callback_answered_while_paused_wakes_the_handler_on_resume(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    (callback_id,) = callback_ids(client, arn)
    settled(arn)
    client.pause_durable_execution(DurableExecutionArn=arn)
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"ok"')
    time.sleep(1.5)
    assert len(invocations(arn)) == 1 and status(client, arn) == "PAUSED"
    client.resume_durable_execution(DurableExecutionArn=arn)
    assert ended(client, arn)["Status"] == "SUCCEEDED"


def test_stop_ends_a_paused_execution(client: Client, functions: Register) -> None:
    name = functions(f"{H}.long_wait")
    arn = start(client, name, json.dumps({"seconds": 30}))
    wait_until(lambda: "WaitStarted" in event_types(client, arn), message="WaitStarted")
    settled(arn)
    client.pause_durable_execution(DurableExecutionArn=arn)
    listed = client.list_durable_executions_by_function(FunctionName=name, Statuses=["PAUSED"])
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
    assert listed["DurableExecutions"][0]["Status"] == "PAUSED"
    running = client.list_durable_executions_by_function(FunctionName=name, Statuses=["RUNNING"])
    assert running["DurableExecutions"] == []
    client.stop_durable_execution(DurableExecutionArn=arn)
    assert status(client, arn) == "STOPPED"
    assert execution_row(arn)["pause_state"] is None
    assert event_types(client, arn)[-2:] == ["ExecutionPaused", "ExecutionStopped"]
    assert_truthful(arn)


def test_pause_and_resume_refuse_what_they_cannot_do(client: Client, functions: Register) -> None:
    arn = suspended_in_wait(client, functions, 30)
    with pytest.raises(ResourceConflictException, match="only a paused execution can be resumed"):
        client.resume_durable_execution(DurableExecutionArn=arn)
    client.pause_durable_execution(DurableExecutionArn=arn, ClientToken="once")
    # The same request again with its client token succeeds without effect; without, it is refused.
    client.pause_durable_execution(DurableExecutionArn=arn, ClientToken="once")
    with pytest.raises(ResourceConflictException, match="already PAUSED"):
        client.pause_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(ResourceConflictException, match="already PAUSED"):  # same token, other parameters
        client.pause_durable_execution(DurableExecutionArn=arn, ClientToken="once", Reason="other")
    client.resume_durable_execution(DurableExecutionArn=arn, ClientToken="back")
    client.resume_durable_execution(DurableExecutionArn=arn, ClientToken="back")
    assert event_types(client, arn).count("ExecutionPaused") == 1
    assert event_types(client, arn).count("ExecutionResumed") == 1
    client.stop_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(ResourceConflictException, match="STOPPED; only a running execution can be paused"):
        client.pause_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(ResourceConflictException):
        client.resume_durable_execution(DurableExecutionArn=arn)
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    for call in (client.pause_durable_execution, client.resume_durable_execution, client.delete_durable_execution):
        with pytest.raises(ResourceNotFoundException):
            call(DurableExecutionArn=missing)


@pytest.mark.parametrize(
    "bad",
    [
        {"Reason": 5},
        {"Reason": "x" * 1025},
        {"ExecutionTimeoutPaused": "yes"},
        {"ClientToken": ""},
        {"ClientToken": "has space"},
        {"ClientToken": "x" * 65},
    ],
)
def test_bad_pause_parameters_are_refused_and_change_nothing(
    client: Client, functions: Register, bad: dict[str, object]
) -> None:
    arn = suspended_in_wait(client, functions, 30)
    before = execution_row(arn)
    with pytest.raises(engine.errors.InvalidParameterValueException):
        client.pause_durable_execution(DurableExecutionArn=arn, **bad)  # type: ignore[arg-type]
    assert execution_row(arn) == before
    client.stop_durable_execution(DurableExecutionArn=arn)


def test_delete_refuses_a_live_execution_and_removes_a_finished_one(client: Client, functions: Register) -> None:
    arn = suspended_in_wait(client, functions, 30)
    with pytest.raises(ResourceConflictException, match="RUNNING; only a SUCCEEDED"):
        client.delete_durable_execution(DurableExecutionArn=arn)
    client.pause_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(ResourceConflictException, match="PAUSED; only a SUCCEEDED"):
        client.delete_durable_execution(DurableExecutionArn=arn)
    client.stop_durable_execution(DurableExecutionArn=arn)
    execution_id = execution_row(arn)["id"]
    answer = client.delete_durable_execution(DurableExecutionArn=arn)
    assert isinstance(answer["DeletionRequestTimestamp"], datetime)
    with pytest.raises(ResourceNotFoundException):
        client.get_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(ResourceNotFoundException):
        client.get_durable_execution_history(DurableExecutionArn=arn)
    with pytest.raises(ResourceNotFoundException):
        client.delete_durable_execution(DurableExecutionArn=arn)
    with db.transaction() as conn:
        for table in (*RETAINED_TABLES, "durable_execution"):
            column = "id" if table == "durable_execution" else "execution_id"
            count = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {column} = %s", (execution_id,)).fetchone()
            assert count is not None and count["n"] == 0, table


def test_every_table_that_points_at_an_execution_is_purged_by_delete() -> None:
    """A table added later with a foreign key to durable_execution must join RETAINED_TABLES."""
    with db.transaction() as conn:
        rows = conn.execute(
            """SELECT DISTINCT c.conrelid::regclass::text AS referencing FROM pg_constraint c
               WHERE c.contype = 'f' AND c.confrelid = 'durable_execution'::regclass"""
        ).fetchall()
    assert {row["referencing"] for row in rows} <= set(RETAINED_TABLES)


def test_concurrent_pauses_and_resumes_end_consistent(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    (callback_id,) = callback_ids(client, arn)
    settled(arn)
    outcomes: list[str] = []
    lock = threading.Lock()

    def hammer(call: object) -> None:
        for _ in range(8):
            try:
                call(DurableExecutionArn=arn)  # type: ignore[operator]
                result = "ok"
            except ResourceConflictException:
                result = "conflict"
            with lock:
                outcomes.append(result)

    threads = [
        threading.Thread(target=hammer, args=(call,))
        for call in (client.pause_durable_execution, client.resume_durable_execution) * 2
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 32 and "ok" in outcomes
    types = [t for t in event_types(client, arn) if t in ("ExecutionPaused", "ExecutionResumed")]
    # Pauses and resumes alternate, starting with a pause, and the last says where it stands.
    assert all(t == ("ExecutionPaused" if i % 2 == 0 else "ExecutionResumed") for i, t in enumerate(types))
    assert types.count("ExecutionPaused") == outcomes.count("ok") - types.count("ExecutionResumed")
    now = status(client, arn)
    assert now == ("PAUSED" if types and types[-1] == "ExecutionPaused" else "RUNNING")
    assert_truthful(arn)
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"ok"')
    if now == "PAUSED":
        client.resume_durable_execution(DurableExecutionArn=arn)
    assert ended(client, arn)["Status"] == "SUCCEEDED"


# --- the invocation at work when the pause comes, driven by hand (``recorder``: no worker) ----


def claimed_parked(client: Client, functions: Register, recorder: Recorder) -> Ticket:
    start(client, functions(f"{H}.parked", timeout=60))
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    return ticket


def step_start(op_id: str = "s1") -> dict[str, str]:
    return {"Id": op_id, "Type": "STEP", "Action": "START", "Name": op_id, "SubType": "Step"}


def test_the_next_checkpoint_from_its_own_view_is_kept_and_answered_without_a_token(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed_parked(client, functions, recorder)
    token, _ = checkpoint(ticket.arn, ticket.token, [step_start("s0")], ticket.cache)
    client.pause_durable_execution(DurableExecutionArn=ticket.arn)
    assert status(client, ticket.arn) == "PAUSING"
    # The invocation's cached view does not know of the pause: its one guarded statement misses,
    # and the checkpoint is decided again from the store.
    answer, delta = checkpoint(ticket.arn, token, [step_start()], ticket.cache)
    assert (answer, delta) == (None, [])
    assert "s1" in {op["Id"] for op in stored_ops(ticket.arn).values()}
    assert status(client, ticket.arn) == "PAUSED"
    assert event_types(client, ticket.arn)[-1] == "ExecutionPaused"
    with pytest.raises(InvalidCheckpointTokenError):
        checkpoint(ticket.arn, token, [])  # its token is spent
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    row = execution_row(ticket.arn)
    assert (row["running"], row["needs_invoke"], row["invoke_reason"]) == (False, True, "resume")
    assert invocations(ticket.arn)[-1]["outcome"] == "suspended"  # told to stop: not a failure
    assert recorder.invoked.count(ticket.execution_id) == 1
    client.resume_durable_execution(DurableExecutionArn=ticket.arn)
    assert recorder.invoked.count(ticket.execution_id) == 2  # the owed invocation, sent on resume


def test_an_invocation_that_ends_without_a_checkpoint_leaves_it_paused(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed_parked(client, functions, recorder)
    client.pause_durable_execution(DurableExecutionArn=ticket.arn)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert status(client, ticket.arn) == "PAUSED"
    assert execution_row(ticket.arn)["needs_invoke"]  # it stopped short of its pending work
    assert recorder.invoked.count(ticket.execution_id) == 1
    client.stop_durable_execution(DurableExecutionArn=ticket.arn)


def test_a_lost_invocation_of_a_pausing_execution_is_retried_only_on_resume(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed_parked(client, functions, recorder)
    client.pause_durable_execution(DurableExecutionArn=ticket.arn)
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed") == 1
    assert status(client, ticket.arn) == "PAUSED"
    assert recorder.invoked.count(ticket.execution_id) == 1  # a crash is retried at once, but not while paused
    assert claim_invocation(ticket.execution_id) is None  # nor may any message claim it
    client.resume_durable_execution(DurableExecutionArn=ticket.arn)
    assert recorder.invoked.count(ticket.execution_id) == 2
    client.stop_durable_execution(DurableExecutionArn=ticket.arn)
