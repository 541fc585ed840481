"""The engine's service duties on real PostgreSQL, with the real Celery worker and scheduler.

Tests that need to hold a token themselves swap in a dispatcher that only records (``recorder``)
and drive the duties (``engine.duties``) directly; everything else goes through ``engine.client()``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aws_durable_execution_sdk_python.serdes import ExtendedTypeSerDes, SerDesContext

import engine
from engine import db, journal, machine
from engine.duties.callbacks import complete_callback
from engine.duties.checkpoint import CheckpointCache, checkpoint, get_state
from engine.duties.claim import LEASE_GRACE, Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.stop import stop_execution
from engine.duties.sweep import mark_invocation_lost
from engine.duties.timers import fire_due_timers
from engine.duties.tokens import function_arn
from engine.duties.unit import ATTEMPTS, utcnow
from engine.errors import (
    CallbackTimeoutException,
    DurableExecutionAlreadyStartedException,
    InvalidCheckpointError,
    InvalidCheckpointTokenError,
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceError,
)
from engine.sql import Q
from engine.store import store
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
    terminal,
    timers,
)

H = "tests.handlers.engine_pg"
Client = engine.LambdaClient


@pytest.fixture(autouse=True)
def _stack(stack: Stack) -> None:
    """Every test here runs with the session's worker and scheduler up."""


def payload(**values: Any) -> str:
    return json.dumps(values)


def result_of(described: dict[str, Any]) -> Any:
    return json.loads(described["Result"])


# --- tokens and fencing -----------------------------------------------------------------------


def claimed(client: Client, functions: Register, recorder: Recorder) -> Ticket:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None and ticket.arn == arn
    return ticket


def step_start(op_id: str = "s1") -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "Action": "START", "Name": op_id, "SubType": "Step"}


def test_each_checkpoint_consumes_its_token(client: Client, functions: Register, recorder: Recorder) -> None:
    ticket = claimed(client, functions, recorder)
    second, _ = checkpoint(ticket.arn, ticket.token, [])
    third, ops = checkpoint(ticket.arn, second, [step_start()])
    assert len({ticket.token, second, third}) == 3
    assert [op["Id"] for op in ops] == ["s1"]
    for stale in (ticket.token, second):
        with pytest.raises(InvalidCheckpointTokenError, match=r"^Invalid checkpoint token$"):
            checkpoint(ticket.arn, stale, [step_start("s2")])
    assert "s2" not in stored_ops(ticket.arn)
    fourth, _ = checkpoint(ticket.arn, third, [])
    assert fourth not in {ticket.token, second, third}


def counted_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every SQL statement sent from here on (BEGIN and COMMIT are not statements here)."""
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    return statements


def test_a_claim_is_one_statement_and_so_is_its_first_checkpoint(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    statements = counted_statements(monkeypatch)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None and len(statements) == 1  # the claim reads the operations too
    row = execution_row(arn)
    assert (row["running"], row["needs_invoke"], row["invocation_seq"]) == (True, False, 1)
    assert row["counters"]["invocations"] == 1 and row["seen_seq"] == row["op_seq"]
    assert row["lease_until"] == ticket.deadline + LEASE_GRACE
    [invocation] = invocations(arn)
    assert (invocation["request_id"], invocation["deadline"], invocation["reason"]) == (
        ticket.request_id,
        ticket.deadline,
        "start",
    )
    assert ticket.function["handler"] == f"{H}.parked" and ticket.function["timeout"] == 60
    statements.clear()
    _, [op] = checkpoint(arn, ticket.token, [step_start()], ticket.cache)
    assert op["Status"] == "STARTED" and len(statements) == 1  # seeded by the claim: no read, no lock
    assert claim_invocation(ticket.execution_id) is None  # the lease is taken


def test_concurrent_claims_take_the_lease_once(client: Client, functions: Register, recorder: Recorder) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    barrier = threading.Barrier(6)

    def claim(_: int) -> Ticket | None:
        barrier.wait()
        return claim_invocation(recorder.invoked[-1])

    with ThreadPoolExecutor(6) as pool:
        tickets = [ticket for ticket in pool.map(claim, range(6)) if ticket]
    assert len(tickets) == 1 and len(invocations(arn)) == 1
    assert execution_row(arn)["counters"]["invocations"] == 1


def test_a_claim_that_waited_for_another_writer_sees_what_it_wrote(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    execution_id = recorder.invoked[-1]
    with psycopg.connect(db.dsn(), autocommit=True) as other, ThreadPoolExecutor(1) as pool:
        with other.transaction():  # another writer holds the row while the claim starts
            other.execute("SELECT 1 FROM durable_execution WHERE id = %s FOR UPDATE", (execution_id,))
            claiming = pool.submit(claim_invocation, execution_id)
            wait_until(_a_claim_waits_for_a_lock, timeout=10, interval=0.02)
            other.execute(
                """INSERT INTO durable_operation (execution_id, op_id, ordinal, type, status, attempt, touch_seq,
                       started_at, doc)
                   SELECT id, 'late', op_seq + 1, 'STEP', 'STARTED', 0, op_seq + 1, now(),
                       '{"Id": "late", "Type": "STEP", "Status": "STARTED", "StartTimestamp": 1}'
                   FROM durable_execution WHERE id = %s""",
                (execution_id,),
            )
            other.execute("UPDATE durable_execution SET op_seq = op_seq + 1 WHERE id = %s", (execution_id,))
        ticket = claiming.result(timeout=10)
    assert ticket is not None and "late" in [op["Id"] for op in ticket.operations]
    assert "late" in ticket.cache.ops and ticket.cache.execution["op_seq"] == execution_row(arn)["op_seq"]


def _a_claim_waits_for_a_lock() -> bool:
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            ("%UPDATE durable_execution e SET invocation_seq%",),
        ).fetchone()
    return bool(row and row[0])


def test_a_claim_whose_function_is_gone_fails_the_execution(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60))
    with db.transaction() as conn:  # as if the function had been deleted since the start
        conn.execute("UPDATE durable_execution SET function_name = 'gone' WHERE arn = %s", (arn,))
    assert claim_invocation(recorder.invoked[-1]) is None
    row = execution_row(arn)
    assert row["status"] == "FAILED" and row["error"]["ErrorType"] == "ResourceNotFoundException"
    assert invocations(arn) == []


def test_concurrent_checkpoints_with_one_token_accept_exactly_one(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    barrier = threading.Barrier(10)

    def send(index: int) -> str | None:
        barrier.wait()
        try:
            return checkpoint(ticket.arn, ticket.token, [step_start(f"s{index}")])[0]
        except InvalidCheckpointTokenError:
            return None

    with ThreadPoolExecutor(10) as pool:
        accepted = [token for token in pool.map(send, range(10)) if token]
    assert len(accepted) == 1
    steps = [op for op in stored_ops(ticket.arn).values() if op["Type"] == "STEP"]
    assert len(steps) == 1
    assert event_types(client, ticket.arn).count("StepStarted") == 1


def test_refused_batch_keeps_the_token_and_stores_nothing(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    before = (stored_ops(ticket.arn), event_types(client, ticket.arn), execution_row(ticket.arn)["token_seq"])
    bad = [step_start("s1"), {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 0}}]
    with pytest.raises(InvalidCheckpointError, match=r"WaitOptions\.WaitSeconds must be at least 1"):
        checkpoint(ticket.arn, ticket.token, bad)
    assert (stored_ops(ticket.arn), event_types(client, ticket.arn), execution_row(ticket.arn)["token_seq"]) == before
    token, ops = checkpoint(ticket.arn, ticket.token, [step_start("s1")])
    assert token and [op["Id"] for op in ops] == ["s1"]


def test_get_state_reads_without_rotating_the_token(client: Client, functions: Register, recorder: Recorder) -> None:
    ticket = claimed(client, functions, recorder)
    ops = get_state(ticket.arn, ticket.token)
    assert [op["Type"] for op in ops] == ["EXECUTION"]
    page = client.get_durable_execution_state(DurableExecutionArn=ticket.arn, CheckpointToken=ticket.token)
    assert [op["Status"] for op in page["Operations"]] == ["STARTED"]
    token, _ = checkpoint(ticket.arn, ticket.token, [])
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        client.get_durable_execution_state(DurableExecutionArn=ticket.arn, CheckpointToken=ticket.token)
    assert get_state(ticket.arn, token)


def test_late_checkpoint_of_a_lost_invocation_is_refused(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed") == 1
    with pytest.raises(InvalidCheckpointTokenError, match="Invalid checkpoint token"):
        checkpoint(ticket.arn, ticket.token, [step_start()])
    assert "s1" not in stored_ops(ticket.arn)
    [lost] = invocations(ticket.arn)
    assert (lost["outcome"], lost["error"]["ErrorType"]) == ("crashed", "Runtime.ExitError")
    # A crash is retried at once; the new invocation's token works and the old one stays fenced.
    assert recorder.invoked.count(ticket.execution_id) == 2
    retry = claim_invocation(ticket.execution_id)
    assert retry is not None and retry.seq == ticket.seq + 1
    token, _ = checkpoint(retry.arn, retry.token, [step_start()])
    with pytest.raises(InvalidCheckpointTokenError):
        checkpoint(ticket.arn, ticket.token, [])
    assert token


def test_a_kill_now_seen_first_by_the_workers_parent_is_still_recorded_as_killed(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    # kill_now records its fault, then SIGKILLs: the worker's parent may report the death (as a
    # crash) before kill_now's own report. The record must say what happened: the operator's kill.
    ticket = claimed(client, functions, recorder)
    with db.transaction() as conn:
        params = {"execution_id": ticket.execution_id, "now": utcnow(), "user": "op", "invocation_seq": ticket.seq}
        conn.execute(Q.record_kill_now, params)
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed") == 1
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "killed") == 0  # kill_now's own report comes late
    [lost] = invocations(ticket.arn)
    assert (lost["outcome"], lost["error"]["ErrorMessage"]) == ("killed", "Invocation was killed by fault injection")


def test_output_of_an_invocation_recorded_lost_is_ignored(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed")
    complete_invocation(ticket, {"Status": "SUCCEEDED", "Result": '"late"'}, None)
    row = execution_row(ticket.arn)
    assert (row["status"], row["result"]) == ("RUNNING", None)
    assert event_types(client, ticket.arn).count("InvocationCompleted") == 1


def test_a_pending_output_is_judged_from_the_invocations_own_operations(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = claimed(client, functions, recorder)
    succeed = {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Name": "s1", "SubType": "Step", "Payload": "1"}
    checkpoint(done.arn, done.token, [step_start(), succeed], done.cache)
    waiting = claimed(client, functions, recorder)
    checkpoint(waiting.arn, waiting.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], waiting.cache)
    statements = counted_statements(monkeypatch)
    complete_invocation(done, {"Status": "PENDING"}, None)
    assert not any("durable_operation" in sql for sql in statements)  # the operations are not read back
    statements.clear()
    complete_invocation(waiting, {"Status": "PENDING"}, None)
    assert len(statements) == 1  # one guarded statement: nobody else touched the execution
    [failed] = invocations(done.arn)
    assert failed["outcome"] == "failed" and "no pending operations" in failed["error"]["ErrorMessage"]
    [suspended] = invocations(waiting.arn)
    assert (suspended["outcome"], suspended["error"]) == ("suspended", None)
    assert event_types(client, waiting.arn)[-1] == "InvocationCompleted"
    row = execution_row(waiting.arn)
    assert (row["status"], row["running"], row["needs_invoke"], row["lease_until"]) == ("RUNNING", False, False, None)


def test_an_ending_in_one_statement_removes_the_invocations_journal(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = claimed(client, functions, recorder)
    checkpoint(ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], ticket.cache)
    path = journal.journal_path(ticket.request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"t": "log", "at": "2026-01-01T00:00:00+00:00", "level": "INFO", "logger": "x", "message": "hello"})
        + "\n"
    )
    statements = counted_statements(monkeypatch)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert len(statements) == 1 and not path.exists()


def test_an_ending_whose_dispatch_fails_still_removes_its_journal(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = _wait_due_soon(client, functions, recorder)  # its ending dispatches the next invocation
    path = journal.journal_path(ticket.request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")

    def broker_down(execution_id: int, timeout: float) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(recorder, "invoke", broker_down)
    complete_invocation(ticket, {"Status": "PENDING"}, None)  # the refused message is logged, not raised
    assert not path.exists()
    row = execution_row(ticket.arn)  # committed, marked never sent: the re-dispatcher's next round sends it
    assert (row["running"], row["needs_invoke"], row["dispatched_at"]) == (False, True, None)


def test_a_succeeding_invocation_ends_the_execution_in_one_statement(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = claimed(client, functions, recorder)
    checkpoint(
        ticket.arn,
        ticket.token,
        [{"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 60}}],
        ticket.cache,
    )
    assert timers(ticket.arn)  # the wait's timer, and the execution timeout's
    statements = counted_statements(monkeypatch)
    complete_invocation(ticket, {"Status": "SUCCEEDED", "Result": '"done"'}, None)
    assert len(statements) == 1
    row = execution_row(ticket.arn)
    assert (row["status"], row["result"], row["running"], row["error"]) == ("SUCCEEDED", '"done"', False, None)
    assert row["ended_at"] is not None and timers(ticket.arn) == []
    assert event_types(client, ticket.arn)[-2:] == ["InvocationCompleted", "ExecutionSucceeded"]
    execution_op = stored_ops(ticket.arn)[ticket.arn.rsplit("/", 1)[1]]
    assert execution_op["Status"] == "SUCCEEDED" and execution_op["EndTimestamp"]
    assert [i["outcome"] for i in invocations(ticket.arn)] == ["succeeded"]
    assert client.get_durable_execution(DurableExecutionArn=ticket.arn)["Result"] == '"done"'


def test_an_ending_after_someone_else_changed_the_execution_takes_the_lock(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    _, [created] = checkpoint(
        ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], ticket.cache
    )
    client.send_durable_execution_callback_success(CallbackId=created["CallbackDetails"]["CallbackId"], Result=b"ok")
    dispatched = len(recorder.invoked)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    # The invocation never saw the callback's result: the locked path asks for another invocation.
    row = execution_row(ticket.arn)
    assert (row["running"], row["needs_invoke"]) == (False, True)
    assert recorder.invoked[dispatched:] == [ticket.execution_id]
    assert [i["outcome"] for i in invocations(ticket.arn)] == ["suspended"]


# --- what a checkpoint response carries -------------------------------------------------------


def test_checkpoint_response_echoes_every_operation_the_batch_changed(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    batch = [
        step_start("s1"),
        {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"},
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 600}},
        {"Id": "c1", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"TimeoutSeconds": 600}},
    ]
    token, ops = checkpoint(ticket.arn, ticket.token, batch)
    by_id = {op["Id"]: op for op in ops}
    assert set(by_id) == {"s1", "w1", "c1"}
    assert by_id["s1"]["Status"] == "SUCCEEDED" and by_id["s1"]["StepDetails"] == {"Attempt": 1, "Result": "1"}
    assert by_id["w1"]["WaitDetails"]["ScheduledEndTimestamp"] > by_id["w1"]["StartTimestamp"]
    assert by_id["c1"]["CallbackDetails"]["CallbackId"]
    assert by_id == {op_id: stored_ops(ticket.arn)[op_id] for op_id in by_id}
    assert checkpoint(ticket.arn, token, [])[1] == []


def test_checkpoint_response_carries_changes_the_handler_has_not_seen(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    token, [created] = checkpoint(ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}])
    client.send_durable_execution_callback_success(CallbackId=created["CallbackDetails"]["CallbackId"], Result=b"yes")
    token, ops = checkpoint(ticket.arn, token, [step_start("s1")])
    assert {op["Id"]: op["Status"] for op in ops} == {"c1": "SUCCEEDED", "s1": "STARTED"}
    assert next(op for op in ops if op["Id"] == "c1")["CallbackDetails"]["Result"] == "yes"
    assert checkpoint(ticket.arn, token, [])[1] == []


def test_an_invocations_cache_answers_alone_until_someone_else_changes_the_execution(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = claimed(client, functions, recorder)
    cache = CheckpointCache(ops={op["Id"]: op for op in ticket.operations})
    token, [created] = checkpoint(
        ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], cache
    )
    assert cache.execution is not None  # the first checkpoint takes the lock and fills the cache
    statements = counted_statements(monkeypatch)
    token, ops = checkpoint(ticket.arn, token, [step_start("s1")], cache)
    assert [op["Id"] for op in ops] == ["s1"] and len(statements) == 1  # no read, no lock: one statement
    client.send_durable_execution_callback_success(CallbackId=created["CallbackDetails"]["CallbackId"], Result=b"yes")
    token, ops = checkpoint(ticket.arn, token, [], cache)
    assert {op["Id"]: op["Status"] for op in ops} == {"c1": "SUCCEEDED"}  # the guard saw the change
    assert cache.ops["c1"]["Status"] == "SUCCEEDED"
    with pytest.raises(InvalidCheckpointTokenError):
        checkpoint(ticket.arn, ticket.token, [step_start("s2")], cache)
    assert "s2" not in stored_ops(ticket.arn)
    client.stop_durable_execution(DurableExecutionArn=ticket.arn)
    assert checkpoint(ticket.arn, token, [step_start("s3")], cache) == (None, [])
    assert cache.execution is None and "s3" not in stored_ops(ticket.arn)


def test_checkpoint_fires_due_timers_before_answering(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None
) -> None:
    arn = start(client, functions(f"{H}.parked", timeout=60), TimeScale=0.001)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    batch = [
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 5}},
        {
            "Id": "s1",
            "Type": "STEP",
            "Action": "RETRY",
            "Error": {"ErrorMessage": "x"},
            "StepOptions": {"NextAttemptDelaySeconds": 5},
        },
    ]
    token, ops = checkpoint(arn, ticket.token, batch)
    assert {op["Id"]: op["Status"] for op in ops} == {"w1": "STARTED", "s1": "PENDING"}
    time.sleep(0.1)
    assert {(t["kind"], t["op_id"]) for t in timers(arn)} >= {("wait", "w1"), ("retry", "s1")}
    token, ops = checkpoint(arn, token, [])
    by_id = {op["Id"]: op for op in ops}
    assert (by_id["w1"]["Status"], by_id["s1"]["Status"]) == ("SUCCEEDED", "READY")
    assert "NextAttemptTimestamp" not in by_id["s1"]["StepDetails"]
    assert {(t["kind"], t["op_id"]) for t in timers(arn)} == {("execution_timeout", "")}
    assert "WaitSucceeded" in event_types(client, arn)


def _wait_due_soon(client: Client, functions: Register, recorder: Recorder) -> Ticket:
    """A claimed invocation that has checkpointed a wait due 10 ms later (and not looked since)."""
    start(client, functions(f"{H}.parked", timeout=60, execution_timeout=3600), TimeScale=0.01)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    wait = {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}}
    checkpoint(ticket.arn, ticket.token, [wait], ticket.cache)
    time.sleep(0.05)
    return ticket


def test_the_scheduler_leaves_a_running_invocations_timers_to_it_for_a_grace_period(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None
) -> None:
    ticket = _wait_due_soon(client, functions, recorder)
    now = utcnow()
    with db.pool().connection() as conn:
        assert ticket.execution_id in store.due_timer_executions(conn, now, 10)
        assert ticket.execution_id not in store.due_timer_executions(conn, now, 10, timedelta(seconds=10))
        assert ticket.execution_id in store.due_timer_executions(conn, now, 10, timedelta(0))
        due = store.next_timer_due(conn, now)
        held_until = store.next_timer_due(conn, now, timedelta(seconds=10))
    assert due is not None and held_until is not None and held_until - due == timedelta(seconds=10)
    fire_due_timers(running_grace=timedelta(seconds=10))  # (another test's due timer may fire)
    assert stored_ops(ticket.arn)["w1"]["Status"] == "STARTED"


def _wake_ups(listener: psycopg.Connection, execution_id: int, timeout: float) -> list[str]:
    """The scheduler wake-ups (NOTIFY durable_timers) sent for one execution within ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        seen += [n.payload for n in listener.notifies(timeout=left, stop_after=1) if n.payload == str(execution_id)]
        if seen:
            break
    return seen


def test_the_scheduler_is_woken_for_held_back_timers_only_once_the_invocation_ends(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    ticket = claimed(client, functions, recorder)
    with psycopg.connect(db.dsn(), autocommit=True) as listener:
        listener.execute("LISTEN durable_timers")
        wait = {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 60}}
        checkpoint(ticket.arn, ticket.token, [wait], ticket.cache)
        assert _wake_ups(listener, ticket.execution_id, 0.3) == []  # held back: no need to wake the loop
        complete_invocation(ticket, {"Status": "PENDING"}, None)
        assert _wake_ups(listener, ticket.execution_id, 5) == [str(ticket.execution_id)]
    assert ("wait", "w1") in {(t["kind"], t["op_id"]) for t in timers(ticket.arn)}


def test_a_timer_wakes_the_scheduler_only_if_due_before_its_next_look(
    client: Client, functions: Register, recorder: Recorder
) -> None:
    fn = functions(f"{H}.parked", timeout=60, execution_timeout=60)
    with psycopg.connect(db.dsn(), autocommit=True) as listener:
        listener.execute("LISTEN durable_timers")
        start(client, fn)  # times out in 60 s: the scheduler's next look (at most 0.5 s away) sees it
        assert _wake_ups(listener, recorder.invoked[-1], 0.3) == []
        start(client, fn, TimeScale=0.001)  # times out in 60 ms: wake it
        assert _wake_ups(listener, recorder.invoked[-1], 5) == [str(recorder.invoked[-1])]


def test_a_suspending_invocation_fires_its_own_due_wait_and_is_invoked_again(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = _wait_due_soon(client, functions, recorder)
    invoked = len(recorder.invoked)
    statements = counted_statements(monkeypatch)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert len(statements) == 1  # the guarded ending fires the wait too
    assert stored_ops(ticket.arn)["w1"]["Status"] == "SUCCEEDED"
    assert {(t["kind"], t["op_id"]) for t in timers(ticket.arn)} == {("execution_timeout", "")}
    assert recorder.invoked[invoked:] == [ticket.execution_id]  # dispatched by the ending, no scheduler
    row = execution_row(ticket.arn)
    assert (row["running"], row["needs_invoke"]) == (False, True)
    assert [i["outcome"] for i in invocations(ticket.arn)] == ["suspended"]
    assert event_types(client, ticket.arn)[-2:] == ["InvocationCompleted", "WaitSucceeded"]


def test_an_ending_fires_its_wait_due_the_same_millisecond_in_its_one_statement(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait's ScheduledEndTimestamp (to the millisecond) is not yet a whole millisecond past,
    # but its timer is due: the ending knows that from its own checkpoint and needs no lock.
    ticket = _wait_due_soon(client, functions, recorder)
    assert ticket.cache is not None
    due = ticket.cache.wait_due["w1"]
    assert stored_ops(ticket.arn)["w1"]["WaitDetails"]["ScheduledEndTimestamp"] == machine.to_ms(due)
    monkeypatch.setattr("engine.duties.end.utcnow", lambda: due)
    statements = counted_statements(monkeypatch)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert len(statements) == 1
    assert stored_ops(ticket.arn)["w1"]["Status"] == "SUCCEEDED"
    assert {(t["kind"], t["op_id"]) for t in timers(ticket.arn)} == {("execution_timeout", "")}


def test_an_ending_with_a_due_timer_it_cannot_fire_itself_takes_the_lock_and_fires_it(
    client: Client, functions: Register, recorder: Recorder, no_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(client, functions(f"{H}.parked", timeout=60, execution_timeout=3600), TimeScale=0.01)
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    retry = {**step_start(), "Action": "RETRY", "Error": {"ErrorMessage": "x"}}
    retry["StepOptions"] = {"NextAttemptDelaySeconds": 1}
    checkpoint(ticket.arn, ticket.token, [step_start(), retry], ticket.cache)
    time.sleep(0.05)
    invoked = len(recorder.invoked)
    statements = counted_statements(monkeypatch)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert len(statements) > 1  # the guarded ending declined: a retry timer is due
    assert stored_ops(ticket.arn)["s1"]["Status"] == "READY"
    assert recorder.invoked[invoked:] == [ticket.execution_id]
    assert [i["outcome"] for i in invocations(ticket.arn)] == ["suspended"]
    assert {(t["kind"], t["op_id"]) for t in timers(ticket.arn)} == {("execution_timeout", "")}


# --- execution names --------------------------------------------------------------------------


def executions_named(function_name: str, name: str) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT id, arn FROM durable_execution WHERE function_name = %s AND name = %s", (function_name, name)
        ).fetchall()


def test_same_name_and_payload_returns_the_same_execution(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.parked")
    first = start(client, fn, payload(order=1), DurableExecutionName="order-1")
    again = start(client, fn, payload(order=1), DurableExecutionName="order-1")
    assert first == again
    assert "/durable-execution/order-1/" in first
    assert len(executions_named(fn, "order-1")) == 1


def test_same_name_with_another_payload_is_refused(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.parked")
    arn = start(client, fn, payload(order=1), DurableExecutionName="order-2")
    with pytest.raises(
        DurableExecutionAlreadyStartedException, match=r"'order-2' already exists .* different payload"
    ) as error:
        start(client, fn, payload(order=99), DurableExecutionName="order-2")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert executions_named(fn, "order-2") == [{"id": execution_row(arn)["id"], "arn": arn}]
    assert execution_row(arn)["input"] == payload(order=1)


def test_name_stays_reserved_after_the_execution_ended(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.parked")
    arn = start(client, fn, payload(n=1), DurableExecutionName="done-once")
    client.stop_durable_execution(DurableExecutionArn=arn)
    assert start(client, fn, payload(n=1), DurableExecutionName="done-once") == arn
    with pytest.raises(DurableExecutionAlreadyStartedException):
        start(client, fn, payload(n=2), DurableExecutionName="done-once")


def test_sync_invoke_with_a_used_name_reattaches_to_the_execution(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.steps")
    first = client.invoke(FunctionName=fn, Payload=payload(n=4), DurableExecutionName="again")
    second = client.invoke(FunctionName=fn, Payload=payload(n=4), DurableExecutionName="again")
    assert first["DurableExecutionArn"] == second["DurableExecutionArn"]
    assert json.loads(first["Payload"].read()) == json.loads(second["Payload"].read()) == 6
    assert len(invocations(first["DurableExecutionArn"])) == 1


def test_concurrent_starts_with_one_name_create_one_execution(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.parked")
    barrier = threading.Barrier(50)

    def race(_: int) -> str:
        barrier.wait()
        return start(engine.client(), fn, payload(same=True), DurableExecutionName="contended")

    with ThreadPoolExecutor(50) as pool:
        arns = set(pool.map(race, range(50)))
    rows = executions_named(fn, "contended")
    assert len(rows) == 1
    assert arns == {rows[0]["arn"]}
    assert event_types(client, rows[0]["arn"]).count("ExecutionStarted") == 1


# --- synchronous invoke limit -----------------------------------------------------------------


def test_sync_invoke_is_refused_above_15_minutes_execution_timeout(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.steps", execution_timeout=901)
    with pytest.raises(
        InvalidParameterValueException,
        match=r"^InvalidParameterValueException: You cannot synchronously invoke a durable function with an "
        r"executionTimeout greater than 15 minutes\.$",
    ):
        client.invoke(FunctionName=fn, Payload=payload(n=1))
    assert client.list_durable_executions_by_function(FunctionName=fn)["DurableExecutions"] == []
    assert start(client, fn, payload(n=1))


def test_sync_invoke_is_allowed_at_exactly_15_minutes(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.steps", execution_timeout=900)
    response = client.invoke(FunctionName=fn, Payload=payload(n=3))
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read()) == 3


# --- stop -------------------------------------------------------------------------------------


def test_stop_revokes_the_running_invocation(client: Client, functions: Register, tmp_path: Path) -> None:
    path = str(tmp_path / "hold")
    arn = start(client, functions(f"{H}.holding"), payload(path=path))
    wait_until(lambda: Path(path + ".entered").exists(), message="hold step entered")
    wait_until(lambda: "StepStarted" in event_types(client, arn), message="hold START checkpointed")
    stopped_at = client.stop_durable_execution(DurableExecutionArn=arn)["StopTimestamp"]
    Path(path + ".release").touch()
    wait_until(lambda: "InvocationCompleted" in event_types(client, arn), message="invocation end")
    described = client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "STOPPED"
    assert described["Error"] == {"ErrorMessage": "Execution stopped by user request"}
    assert described["EndTimestamp"] == stopped_at
    history = events(client, arn)
    assert [e["EventType"] for e in history] == [
        "ExecutionStarted",
        "StepStarted",
        "ExecutionStopped",
        "InvocationCompleted",
    ]
    assert history[2]["ExecutionStoppedDetails"]["Error"]["Payload"] == {
        "ErrorMessage": "Execution stopped by user request"
    }
    # The SDK got no token for the step's SUCCEED, so it ended the invocation PENDING, without error.
    assert "Error" not in history[3]["InvocationCompletedDetails"]
    assert op_named(arn, "hold")["Status"] == "STARTED"
    assert not Path(path + ".after").exists()
    assert client.stop_durable_execution(DurableExecutionArn=arn)["StopTimestamp"] == stopped_at
    assert timers(arn) == []


def test_stop_records_the_callers_error(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"))
    callback_ids(client, arn)
    error = {"ErrorType": "Operator", "ErrorMessage": "halted by ops", "ErrorData": "{}"}
    client.stop_durable_execution(DurableExecutionArn=arn, Error=error)
    described = client.get_durable_execution(DurableExecutionArn=arn)
    assert (described["Status"], described["Error"]) == ("STOPPED", error)
    stopped = next(e for e in events(client, arn) if e["EventType"] == "ExecutionStopped")
    assert stopped["ExecutionStoppedDetails"]["Error"]["Payload"] == error


# --- callbacks --------------------------------------------------------------------------------


def _callback_started(client: Client, functions: Register, recorder: Recorder) -> tuple[Ticket, str]:
    """A claimed invocation that has checkpointed a callback (and is still running); its id."""
    ticket = claimed(client, functions, recorder)
    _, ops = checkpoint(ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], ticket.cache)
    [callback] = [op for op in ops if op["Id"] == "c1"]
    return ticket, callback["CallbackDetails"]["CallbackId"]


def test_a_suspended_executions_callback_is_answered_in_one_read_and_one_write(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, callback_id = _callback_started(client, functions, recorder)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    invoked = len(recorder.invoked)
    statements = counted_statements(monkeypatch)
    complete_callback(callback_id, result='"ok"', success=True)
    assert len(statements) == 2  # the unlocked read and the guarded write
    assert stored_ops(ticket.arn)["c1"]["Status"] == "SUCCEEDED"
    assert recorder.invoked[invoked:] == [ticket.execution_id]
    row = execution_row(ticket.arn)
    assert (row["needs_invoke"], row["invoke_reason"], row["running"]) == (True, "callback", False)
    assert row["dispatched_at"] is not None
    assert event_types(client, ticket.arn)[-1] == "CallbackSucceeded"
    assert {t["kind"] for t in timers(ticket.arn)} == {"execution_timeout"}


def test_a_callback_answered_while_its_invocation_runs_wakes_the_handler_after_it(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, callback_id = _callback_started(client, functions, recorder)
    invoked = len(recorder.invoked)
    statements = counted_statements(monkeypatch)
    complete_callback(callback_id, error={"ErrorMessage": "no"}, success=False)
    assert len(statements) == 2 and recorder.invoked[invoked:] == []  # not while it runs
    assert stored_ops(ticket.arn)["c1"]["Status"] == "FAILED"
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    assert recorder.invoked[invoked:] == [ticket.execution_id]  # its ending sees the answer


def test_a_callback_answer_that_meets_a_change_reads_again_and_writes(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, callback_id = _callback_started(client, functions, recorder)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    read = store.execution_by_callback
    reads = []

    def read_before_a_claim_once(conn: psycopg.Connection, callback: str) -> dict[str, Any] | None:
        row = read(conn, callback)
        assert row is not None
        reads.append(row)
        if len(reads) > 1:
            return row
        return {**row, "invocation_seq": row["invocation_seq"] - 1}  # as if read before the last claim

    monkeypatch.setattr(store, "execution_by_callback", read_before_a_claim_once)
    statements = counted_statements(monkeypatch)
    complete_callback(callback_id, result='"late"', success=True)
    assert len(statements) > 2  # the guarded write declined; the answer was read again and written
    assert len(reads) == 2
    assert stored_ops(ticket.arn)["c1"]["Status"] == "SUCCEEDED"
    assert event_types(client, ticket.arn).count("CallbackSucceeded") == 1
    with pytest.raises(InvalidParameterValueException, match="already completed"):
        complete_callback(callback_id, result='"again"', success=True)


def test_a_callback_answer_that_always_meets_a_change_gives_up_with_a_clear_error(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, callback_id = _callback_started(client, functions, recorder)
    complete_invocation(ticket, {"Status": "PENDING"}, None)
    read = store.execution_by_callback

    def always_stale(conn: psycopg.Connection, callback: str) -> dict[str, Any] | None:
        row = read(conn, callback)
        assert row is not None
        return {**row, "invocation_seq": row["invocation_seq"] - 1}

    monkeypatch.setattr(store, "execution_by_callback", always_stale)
    with pytest.raises(ResourceConflictException, match=f"changed under each of its {ATTEMPTS} attempts"):
        complete_callback(callback_id, result='"late"', success=True)
    assert stored_ops(ticket.arn)["c1"]["Status"] == "STARTED"  # nothing was written
    assert "CallbackSucceeded" not in event_types(client, ticket.arn)


def test_a_finishing_batch_from_a_stale_view_is_decided_again_from_the_store(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = claimed(client, functions, recorder)
    token, ops = checkpoint(
        ticket.arn, ticket.token, [{"Id": "c1", "Type": "CALLBACK", "Action": "START"}], ticket.cache
    )
    [callback] = [op for op in ops if op["Id"] == "c1"]
    complete_callback(callback["CallbackDetails"]["CallbackId"], result='"yes"', success=True)  # under the invocation
    statements = counted_statements(monkeypatch)
    finish = {"Id": "execution-result-1", "Type": "EXECUTION", "Action": "SUCCEED", "Payload": '"done"'}
    assert checkpoint(ticket.arn, token, [finish], ticket.cache) == (None, [])
    guards = [sql for sql in statements if "SET token_seq = token_seq" in sql]
    assert len(guards) == 2  # the invocation's view missed; the read that followed locked the row
    assert execution_row(ticket.arn)["pending_finish"]["status"] == "SUCCEEDED"
    assert ticket.cache is not None and ticket.cache.execution is None  # the invocation must stop


def test_a_stop_that_meets_a_change_reads_again_and_stops_once(
    client: Client, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, _ = _callback_started(client, functions, recorder)
    read = store.execution_by_arn
    reads: list[dict[str, Any] | None] = []

    def stale_once(conn: psycopg.Connection, arn: str, *, lock: bool = False) -> dict[str, Any] | None:
        row = read(conn, arn, lock=lock)
        reads.append(row)
        if len(reads) == 1 and row is not None:
            return {**row, "op_seq": row["op_seq"] - 1}  # as if read before the invocation's checkpoint
        return row

    monkeypatch.setattr(store, "execution_by_arn", stale_once)
    stop_execution(ticket.arn, None)
    assert len(reads) == 2
    monkeypatch.undo()
    assert execution_row(ticket.arn)["status"] == "STOPPED"
    assert event_types(client, ticket.arn).count("ExecutionStopped") == 1


def test_callback_success_resumes_with_the_raw_result(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"))
    [callback_id] = callback_ids(client, arn)
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'{"ok": true}')
    described = terminal(client, arn)
    assert (described["Status"], result_of(described)) == ("SUCCEEDED", {"result": '{"ok": true}'})
    succeeded = next(e for e in events(client, arn) if e["EventType"] == "CallbackSucceeded")
    assert succeeded["CallbackSucceededDetails"]["Result"] == {"Payload": '{"ok": true}', "Truncated": False}


def test_callback_failure_raises_in_the_handler(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"))
    [callback_id] = callback_ids(client, arn)
    client.send_durable_execution_callback_failure(
        CallbackId=callback_id, Error={"ErrorType": "Rejected", "ErrorMessage": "manager said no"}
    )
    described = terminal(client, arn)
    assert result_of(described) == {
        "error_type": "aws_durable_execution_sdk_python.exceptions.CallbackExternalError",
        "message": "manager said no",
    }
    failed = next(e for e in events(client, arn) if e["EventType"] == "CallbackFailed")
    assert failed["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "Rejected",
        "ErrorMessage": "manager said no",
    }


def test_heartbeats_keep_a_callback_alive(client: Client, functions: Register) -> None:
    # Heartbeat timeout 10 s at TimeScale 0.1: one real second without a heartbeat times it out.
    arn = start(client, functions(f"{H}.parked"), payload(heartbeat=10), TimeScale=0.1)
    [callback_id] = callback_ids(client, arn)
    for _ in range(10):
        client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
        time.sleep(0.3)
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result="alive")
    assert result_of(terminal(client, arn)) == {"result": "alive"}
    assert "CallbackTimedOut" not in event_types(client, arn)


def test_missing_heartbeat_times_the_callback_out(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"), payload(heartbeat=10), TimeScale=0.1)
    callback_ids(client, arn)
    described = terminal(client, arn, timeout=30)
    assert result_of(described)["message"] == "Callback timed out on heartbeat"
    timed_out = next(e for e in events(client, arn) if e["EventType"] == "CallbackTimedOut")
    assert timed_out["CallbackTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == "Callback.Heartbeat"


def test_late_callback_after_timeout_is_refused(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"), payload(timeout=10), TimeScale=0.1)
    [callback_id] = callback_ids(client, arn)
    terminal(client, arn, timeout=30)
    before = (stored_ops(arn), event_types(client, arn))
    for send in (
        lambda: client.send_durable_execution_callback_success(CallbackId=callback_id, Result="late"),
        lambda: client.send_durable_execution_callback_failure(CallbackId=callback_id),
        lambda: client.send_durable_execution_callback_heartbeat(CallbackId=callback_id),
    ):
        with pytest.raises(CallbackTimeoutException, match=f"Callback '{callback_id}' has already timed out"):
            send()
    assert (stored_ops(arn), event_types(client, arn)) == before
    assert op_named(arn, "parked")["CallbackDetails"]["Error"]["ErrorType"] == "Callback.Timeout"


def test_unknown_callback_id_is_not_found(client: Client) -> None:
    unknown = "bm90LWEtY2FsbGJhY2s="
    for send in (
        lambda: client.send_durable_execution_callback_success(CallbackId=unknown, Result="x"),
        lambda: client.send_durable_execution_callback_failure(CallbackId=unknown, Error={"ErrorMessage": "x"}),
        lambda: client.send_durable_execution_callback_heartbeat(CallbackId=unknown),
    ):
        with pytest.raises(ResourceNotFoundException, match=f"Callback '{unknown}' not found"):
            send()


def test_concurrent_success_and_failure_have_exactly_one_winner(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.many_callbacks"), payload(n=6))
    ids = callback_ids(client, arn, 6)
    settled(arn)
    outcomes: list[dict[str, str]] = []
    for callback_id in ids:
        barrier = threading.Barrier(2)

        def send(kind: str, callback_id: str = callback_id, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            try:
                if kind == "ok":
                    engine.client().send_durable_execution_callback_success(CallbackId=callback_id, Result="won")
                else:
                    engine.client().send_durable_execution_callback_failure(
                        CallbackId=callback_id, Error={"ErrorMessage": "won"}
                    )
            except InvalidParameterValueException as exc:
                return f"refused:{exc.message}"
            return "accepted"

        with ThreadPoolExecutor(2) as pool:
            results = dict(zip(("ok", "err"), pool.map(send, ("ok", "err")), strict=True))
        outcomes.append(results)
        assert sorted(v.split(":")[0] for v in results.values()) == ["accepted", "refused"], results
        loser = next(v for v in results.values() if v != "accepted")
        assert loser.startswith(f"refused:Callback '{callback_id}' is already completed (status ")
    described = terminal(client, arn)
    winners = [next(kind for kind, v in o.items() if v == "accepted") for o in outcomes]
    assert result_of(described) == [f"{kind}:won" for kind in winners]
    history = events(client, arn)
    for callback_id, winner in zip(ids, winners, strict=True):
        op = next(
            op for op in stored_ops(arn).values() if op.get("CallbackDetails", {}).get("CallbackId") == callback_id
        )
        assert op["Status"] == ("SUCCEEDED" if winner == "ok" else "FAILED")
        closing = [
            e for e in history if e.get("Id") == op["Id"] and e["EventType"] in {"CallbackSucceeded", "CallbackFailed"}
        ]
        assert [e["EventType"] for e in closing] == ["CallbackSucceeded" if winner == "ok" else "CallbackFailed"]


# --- chained invoke, map, wait_for_condition --------------------------------------------------


def test_chained_invoke_of_a_durable_function(client: Client, functions: Register) -> None:
    child_fn = functions(f"{H}.durable_child")
    arn = start(client, functions(f"{H}.invoker"), payload(target=child_fn, payload={"n": 21}))
    described = terminal(client, arn)
    assert (described["Status"], result_of(described)) == ("SUCCEEDED", {"result": {"doubled": 42}})
    history = events(client, arn)
    started = next(e for e in history if e["EventType"] == "ChainedInvokeStarted")["ChainedInvokeStartedDetails"]
    assert started["FunctionName"] == child_fn
    assert json.loads(started["Input"]["Payload"]) == {"n": 21}
    child = client.get_durable_execution(DurableExecutionArn=started["DurableExecutionArn"])
    assert child["Status"] == "SUCCEEDED" and json.loads(child["Result"]) == {"doubled": 42}
    assert "ChainedInvokeSucceeded" in [e["EventType"] for e in history]


def test_chained_invoke_of_a_plain_function(client: Client, functions: Register) -> None:
    child_fn = functions(f"{H}.plain_child", execution_timeout=None)
    arn = start(client, functions(f"{H}.invoker"), payload(target=child_fn, payload={"n": 1}))
    described = terminal(client, arn)
    assert (described["Status"], result_of(described)) == ("SUCCEEDED", {"result": {"plain": 2}})
    types = event_types(client, arn)
    assert types.index("ChainedInvokeStarted") < types.index("ChainedInvokeSucceeded")


def test_chained_invoke_of_a_failing_durable_function(client: Client, functions: Register) -> None:
    child_fn = functions(f"{H}.failing_child")
    arn = start(client, functions(f"{H}.invoker"), payload(target=child_fn, payload={"n": 7}))
    assert result_of(terminal(client, arn)) == {"error_type": "ValueError", "message": "child refused 7"}
    assert "ChainedInvokeFailed" in event_types(client, arn)


def test_chained_invoke_of_an_unknown_function_fails_the_operation(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.invoker"), payload(target="no-such-function-here", payload={}))
    assert result_of(terminal(client, arn)) == {
        "error_type": "ResourceNotFoundException",
        "message": "Function not found: no-such-function-here",
    }
    assert event_types(client, arn).count("ChainedInvokeFailed") == 1


def test_map_runs_every_item_end_to_end(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.mapper"), payload(items=[1, 2, 3]))
    described = terminal(client, arn)
    assert (described["Status"], result_of(described)) == ("SUCCEEDED", [10, 20, 30])
    contexts = [(e["EventType"], e.get("SubType")) for e in events(client, arn) if e["EventType"].startswith("Context")]
    assert contexts.count(("ContextStarted", "Map")) == 1
    assert contexts.count(("ContextStarted", "MapIteration")) == 3
    assert contexts.count(("ContextSucceeded", "MapIteration")) == 3
    assert contexts[-1] == ("ContextSucceeded", "Map")


def test_wait_for_condition_polls_until_met(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.poller"), payload(target=3), TimeScale=0.05)
    described = terminal(client, arn)
    assert (described["Status"], result_of(described)) == ("SUCCEEDED", {"n": 3})
    polls = [e for e in events(client, arn) if e["EventType"] == "StepSucceeded"]
    assert [e["StepSucceededDetails"]["RetryDetails"]["CurrentAttempt"] for e in polls] == [1, 2, 3]
    serdes, context = ExtendedTypeSerDes(), SerDesContext()
    states = [serdes.deserialize(e["StepSucceededDetails"]["Result"]["Payload"], context) for e in polls]
    assert states == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert op_named(arn, "poll")["StepDetails"]["Attempt"] == 3


# --- execution timeout ------------------------------------------------------------------------


def test_execution_timeout_ends_the_execution_timed_out(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.long_wait", execution_timeout=60), payload(seconds=3600), TimeScale=0.02)
    described = terminal(client, arn, timeout=30)
    assert described["Status"] == "TIMED_OUT"
    assert described["Error"] == {"ErrorMessage": "Execution timed out after 60 seconds."}
    history = events(client, arn)
    [timed_out] = [e for e in history if e["EventType"] == "ExecutionTimedOut"]
    assert timed_out["ExecutionTimedOutDetails"]["Error"]["Payload"] == {
        "ErrorMessage": "Execution timed out after 60 seconds."
    }
    assert "WaitSucceeded" not in [e["EventType"] for e in history]
    assert timers(arn) == []


def test_execution_timeout_revokes_the_running_invocation(client: Client, functions: Register, tmp_path: Path) -> None:
    path = str(tmp_path / "hold")
    fn = functions(f"{H}.holding", execution_timeout=60)
    arn = start(client, fn, payload(path=path), TimeScale=0.05)
    wait_until(lambda: Path(path + ".entered").exists(), message="hold step entered")
    assert terminal(client, arn, timeout=30)["Status"] == "TIMED_OUT"
    Path(path + ".release").touch()
    wait_until(lambda: "InvocationCompleted" in event_types(client, arn), message="invocation end")
    assert event_types(client, arn) == ["ExecutionStarted", "StepStarted", "ExecutionTimedOut", "InvocationCompleted"]
    assert op_named(arn, "hold")["Status"] == "STARTED"
    assert not Path(path + ".after").exists()
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "TIMED_OUT"


# --- history paging ---------------------------------------------------------------------------


@pytest.fixture
def five_steps(client: Client, functions: Register) -> str:
    response = client.invoke(FunctionName=functions(f"{H}.steps"), Payload=payload(n=5))
    assert json.loads(response["Payload"].read()) == 10
    return response["DurableExecutionArn"]


def pages(client: Client, arn: str, **kwargs: Any) -> list[list[int]]:
    result, marker = [], None
    while True:
        page = client.get_durable_execution_history(
            DurableExecutionArn=arn, **kwargs, **({"Marker": marker} if marker else {})
        )
        result.append([e["EventId"] for e in page["Events"]])
        marker = page.get("NextMarker")
        if not marker:
            return result


def test_history_pages_cover_every_event_once(client: Client, five_steps: str) -> None:
    full = [e["EventId"] for e in events(client, five_steps)]
    assert full == list(range(1, 14))
    assert pages(client, five_steps, MaxItems=4) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13]]
    assert pages(client, five_steps, MaxItems=13) == [full]


def test_history_pages_in_reverse_order(client: Client, five_steps: str) -> None:
    assert pages(client, five_steps, MaxItems=5, ReverseOrder=True) == [
        [13, 12, 11, 10, 9],
        [8, 7, 6, 5, 4],
        [3, 2, 1],
    ]


def test_history_without_execution_data_truncates_payloads(client: Client, five_steps: str) -> None:
    bare = events(client, five_steps, data=False)
    assert bare[0]["ExecutionStartedDetails"]["Input"] == {"Truncated": True}
    assert bare[2]["StepSucceededDetails"]["Result"] == {"Truncated": True}
    assert bare[-1]["ExecutionSucceededDetails"]["Result"] == {"Truncated": True}
    full = events(client, five_steps, data=True)
    assert full[0]["ExecutionStartedDetails"]["Input"] == {"Payload": payload(n=5), "Truncated": False}
    assert full[-1]["ExecutionSucceededDetails"]["Result"] == {"Payload": "10", "Truncated": False}
    assert client.get_durable_execution_history(DurableExecutionArn=five_steps)["Events"] == bare


# --- listing executions -----------------------------------------------------------------------


@dataclass
class Listed:
    fn: str
    arns: dict[str, str]
    started: dict[str, Any]


@pytest.fixture
def four_executions(client: Client, functions: Register) -> Listed:
    fn = functions(f"{H}.parked")
    arns = {}
    for name in ("a", "b", "c", "d"):
        arns[name] = start(client, fn, payload(name=name), DurableExecutionName=name)
        time.sleep(0.01)
    for name in ("b", "d"):
        client.stop_durable_execution(DurableExecutionArn=arns[name])
    started = {n: client.get_durable_execution(DurableExecutionArn=a)["StartTimestamp"] for n, a in arns.items()}
    return Listed(fn, arns, started)


def listed(client: Client, listed_fn: str, **kwargs: Any) -> list[str]:
    page = client.list_durable_executions_by_function(FunctionName=listed_fn, **kwargs)
    return [s["DurableExecutionName"] for s in page["DurableExecutions"]]


def test_listing_is_newest_first_with_filters(client: Client, four_executions: Listed) -> None:
    fn, started = four_executions.fn, four_executions.started
    assert listed(client, fn) == ["d", "c", "b", "a"]
    assert listed(client, fn, ReverseOrder=True) == ["a", "b", "c", "d"]
    assert listed(client, fn, Statuses=["STOPPED"]) == ["d", "b"]
    assert listed(client, fn, Statuses=["RUNNING", "SUCCEEDED"]) == ["c", "a"]
    assert listed(client, fn, DurableExecutionName="c") == ["c"]
    assert listed(client, fn, StartedAfter=started["b"]) == ["d", "c", "b"]
    assert listed(client, fn, StartedBefore=started["c"]) == ["b", "a"]
    assert listed(client, fn, StartedAfter=started["b"], StartedBefore=started["d"], Statuses=["RUNNING"]) == ["c"]


def test_listing_summaries_have_the_boto3_shape(client: Client, four_executions: Listed) -> None:
    summaries = client.list_durable_executions_by_function(FunctionName=four_executions.fn)["DurableExecutions"]
    by_name = {s["DurableExecutionName"]: s for s in summaries}
    assert by_name["d"]["DurableExecutionArn"] == four_executions.arns["d"]
    assert by_name["d"]["FunctionArn"] == function_arn(four_executions.fn)
    assert (by_name["d"]["Status"], by_name["c"]["Status"]) == ("STOPPED", "RUNNING")
    assert by_name["d"]["EndTimestamp"] >= by_name["d"]["StartTimestamp"]
    assert "EndTimestamp" not in by_name["c"]


@pytest.mark.parametrize("reverse", [False, True])
def test_listing_pages_cover_every_execution_once(client: Client, four_executions: Listed, reverse: bool) -> None:
    names, marker = [], None
    while True:
        page = client.list_durable_executions_by_function(
            FunctionName=four_executions.fn, MaxItems=1, ReverseOrder=reverse, **({"Marker": marker} if marker else {})
        )
        names.append([s["DurableExecutionName"] for s in page["DurableExecutions"]])
        marker = page.get("NextMarker")
        if not marker:
            break
    expected = ["a", "b", "c", "d"] if reverse else ["d", "c", "b", "a"]
    assert names == [[n] for n in expected]
    assert listed(client, four_executions.fn, Statuses=["STOPPED"], MaxItems=1) == ["d"]


# --- bad input at every entry point -----------------------------------------------------------


@dataclass
class Parked:
    """A settled execution waiting on a callback: nothing changes it unless a call does."""

    fn: str
    arn: str
    callback_id: str
    sync_fn: str


@pytest.fixture(scope="module")
def parked(stack: Stack) -> Iterator[Parked]:
    client = engine.client()
    suffix = uuid.uuid4().hex[:8]
    fn, sync_fn = f"t-parked-{suffix}", f"t-sync-{suffix}"
    client.create_function(FunctionName=fn, Handler=f"{H}.parked", DurableConfig={"ExecutionTimeout": 3600})
    client.create_function(FunctionName=sync_fn, Handler=f"{H}.steps", DurableConfig={"ExecutionTimeout": 901})
    arn = start(client, fn, payload(kind="parked"), DurableExecutionName="parked")
    [callback_id] = callback_ids(client, arn)
    settled(arn)
    yield Parked(fn, arn, callback_id, sync_fn)
    client.stop_durable_execution(DurableExecutionArn=arn)


def fingerprint(*function_names: str) -> list[Any]:
    """Every stored row that belongs to these functions and their executions."""
    with db.transaction() as conn:
        rows: list[Any] = conn.execute(
            "SELECT * FROM durable_function WHERE name = ANY(%s) ORDER BY name", (list(function_names),)
        ).fetchall()
        executions = conn.execute(
            "SELECT * FROM durable_execution WHERE function_name = ANY(%s) ORDER BY id", (list(function_names),)
        ).fetchall()
        ids = [e["id"] for e in executions]
        rows += executions
        for table, order in (
            ("durable_operation", "ordinal"),
            ("durable_event", "event_id"),
            ("durable_timer", "id"),
            ("durable_invocation", "seq"),
        ):
            rows += conn.execute(
                f"SELECT * FROM {table} WHERE execution_id = ANY(%s) ORDER BY execution_id, {order}", (ids,)
            ).fetchall()
    return rows


def other_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"


BadCall = Callable[[Client, Parked], Any]
BIG = "x" * (1024 * 1024)
BAD_CALLS: list[tuple[str, BadCall, type[ServiceError], str]] = [
    (
        "invoke-unknown-function",
        lambda c, p: c.invoke(FunctionName="t-no-such-fn", InvocationType="Event"),
        ResourceNotFoundException,
        r"Function not found: arn:aws:lambda:[a-z0-9-]+:\d{12}:function:t-no-such-fn$",
    ),
    (
        "invoke-bad-function-name",
        lambda c, p: c.invoke(FunctionName="bad name!", InvocationType="Event"),
        InvalidParameterValueException,
        r"FunctionName 'bad name!' is invalid",
    ),
    (
        "invoke-malformed-json",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", Payload=b'{"a": '),
        InvalidRequestContentException,
        r"Could not parse request body into json: Payload is not valid JSON: Expecting value \(line 1, column 7\)\.$",
    ),
    (
        "invoke-not-utf8",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", Payload=b"\xff\xfe"),
        InvalidRequestContentException,
        r"Could not parse request body into json: Payload is not UTF-8 \(byte 0\)\.$",
    ),
    (
        "invoke-async-too-large",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", Payload=json.dumps(BIG)),
        RequestTooLargeException,
        r"Request must be smaller than 1048576 bytes for the invoke operation \(got 1048578\)",
    ),
    (
        "invoke-sync-too-large",
        lambda c, p: c.invoke(FunctionName=p.fn, Payload=json.dumps(BIG * 6)),
        RequestTooLargeException,
        r"Request must be smaller than 6291456 bytes",
    ),
    (
        "invoke-name-with-space",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", DurableExecutionName="a b"),
        InvalidParameterValueException,
        r"DurableExecutionName must be 1-64 letters, digits, hyphens or underscores, got 'a b'\.$",
    ),
    (
        "invoke-name-empty",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", DurableExecutionName=""),
        InvalidParameterValueException,
        r"DurableExecutionName must be 1-64",
    ),
    (
        "invoke-name-too-long",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", DurableExecutionName="n" * 65),
        InvalidParameterValueException,
        r"DurableExecutionName must be 1-64",
    ),
    (
        "invoke-name-unicode",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", DurableExecutionName="naïve"),
        InvalidParameterValueException,
        r"DurableExecutionName must be 1-64",
    ),
    (
        "invoke-name-of-another-payload",
        lambda c, p: c.invoke(
            FunctionName=p.fn, InvocationType="Event", DurableExecutionName="parked", Payload=payload(kind="other")
        ),
        DurableExecutionAlreadyStartedException,
        r"'parked' already exists for function 't-parked-\w+' with a different payload",
    ),
    (
        "invoke-bad-invocation-type",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Sync"),
        InvalidParameterValueException,
        r"InvocationType must be Event, RequestResponse or DryRun, got 'Sync'\.$",
    ),
    (
        "invoke-bad-time-scale",
        lambda c, p: c.invoke(FunctionName=p.fn, InvocationType="Event", TimeScale=2),
        InvalidParameterValueException,
        r"TimeScale must be a number between 0\.0001 and 1",
    ),
    (
        "invoke-sync-over-15-minutes",
        lambda c, p: c.invoke(FunctionName=p.sync_fn, Payload=payload(n=1)),
        InvalidParameterValueException,
        r"You cannot synchronously invoke a durable function with an executionTimeout greater than 15 minutes\.$",
    ),
    (
        "get-malformed-arn",
        lambda c, p: c.get_durable_execution(DurableExecutionArn="not-an-arn"),
        InvalidParameterValueException,
        r"DurableExecutionArn 'not-an-arn' is not a durable execution ARN\.$",
    ),
    (
        "get-unknown-arn",
        lambda c, p: c.get_durable_execution(DurableExecutionArn=other_arn(p.arn)),
        ResourceNotFoundException,
        r"Durable execution not found: arn:aws:lambda:.*/durable-execution/parked/",
    ),
    (
        "history-unknown-arn",
        lambda c, p: c.get_durable_execution_history(DurableExecutionArn=other_arn(p.arn)),
        ResourceNotFoundException,
        r"Durable execution not found",
    ),
    (
        "history-max-items-zero",
        lambda c, p: c.get_durable_execution_history(DurableExecutionArn=p.arn, MaxItems=0),
        InvalidParameterValueException,
        r"MaxItems must be an integer between 1 and 1000\.$",
    ),
    (
        "history-max-items-too-big",
        lambda c, p: c.get_durable_execution_history(DurableExecutionArn=p.arn, MaxItems=1001),
        InvalidParameterValueException,
        r"MaxItems must be an integer between 1 and 1000\.$",
    ),
    (
        "history-bad-marker",
        lambda c, p: c.get_durable_execution_history(DurableExecutionArn=p.arn, Marker="@@@"),
        InvalidParameterValueException,
        r"Marker is invalid: pass the NextMarker of a previous response\.$",
    ),
    (
        "history-marker-of-a-listing",
        lambda c, p: c.get_durable_execution_history(
            DurableExecutionArn=p.arn, Marker=c.list_functions(MaxItems=1)["NextMarker"]
        ),
        InvalidParameterValueException,
        r"Marker is invalid: pass the NextMarker of a previous response\.$",
    ),
    (
        "list-marker-of-a-history",
        lambda c, p: c.list_durable_executions_by_function(
            FunctionName=p.fn,
            Marker=c.get_durable_execution_history(DurableExecutionArn=p.arn, MaxItems=1)["NextMarker"],
        ),
        InvalidParameterValueException,
        r"Marker is invalid: pass the NextMarker of a previous response\.$",
    ),
    (
        "list-marker-of-functions",
        lambda c, p: c.list_durable_executions_by_function(
            FunctionName=p.fn, Marker=c.list_functions(MaxItems=1)["NextMarker"]
        ),
        InvalidParameterValueException,
        r"Marker is invalid",
    ),
    (
        "state-stale-token",
        lambda c, p: c.get_durable_execution_state(DurableExecutionArn=p.arn, CheckpointToken="MS4xLjA="),
        InvalidParameterValueException,
        r"^InvalidParameterValueException: Invalid checkpoint token$",
    ),
    (
        "state-garbage-token",
        lambda c, p: c.get_durable_execution_state(DurableExecutionArn=p.arn, CheckpointToken="%%"),
        InvalidParameterValueException,
        r"^InvalidParameterValueException: Invalid checkpoint token$",
    ),
    (
        "state-empty-token",
        lambda c, p: c.get_durable_execution_state(DurableExecutionArn=p.arn, CheckpointToken=""),
        InvalidParameterValueException,
        r"CheckpointToken is required and must be a non-empty string\.$",
    ),
    (
        "list-unknown-function",
        lambda c, p: c.list_durable_executions_by_function(FunctionName="t-no-such-fn"),
        ResourceNotFoundException,
        r"Function not found: .*:function:t-no-such-fn$",
    ),
    (
        "list-bad-status",
        lambda c, p: c.list_durable_executions_by_function(FunctionName=p.fn, Statuses=["DONE"]),
        InvalidParameterValueException,
        r"Statuses must be among \[.*'RUNNING'.*\]; got \['DONE'\]\.$",
    ),
    (
        "list-naive-datetime",
        lambda c, p: c.list_durable_executions_by_function(
            FunctionName=p.fn, StartedAfter=execution_row(p.arn)["started_at"].replace(tzinfo=None)
        ),
        InvalidParameterValueException,
        r"StartedAfter must be timezone-aware \(give an offset such as \+00:00 or Z\)\.$",
    ),
    (
        "list-bad-max-items",
        lambda c, p: c.list_durable_executions_by_function(FunctionName=p.fn, MaxItems=-1),
        InvalidParameterValueException,
        r"MaxItems must be an integer between 1 and 1000\.$",
    ),
    (
        "stop-unknown-arn",
        lambda c, p: c.stop_durable_execution(DurableExecutionArn=other_arn(p.arn)),
        ResourceNotFoundException,
        r"Durable execution 'arn:aws:lambda:.*' not found\.$",
    ),
    (
        "stop-malformed-arn",
        lambda c, p: c.stop_durable_execution(DurableExecutionArn="arn:aws:s3:::bucket"),
        InvalidParameterValueException,
        r"is not a durable execution ARN",
    ),
    (
        "stop-error-unknown-key",
        lambda c, p: c.stop_durable_execution(DurableExecutionArn=p.arn, Error={"Message": "x"}),
        InvalidParameterValueException,
        r"Error must be an object with only \['ErrorData', 'ErrorMessage', 'ErrorType', 'StackTrace'\]\.$",
    ),
    (
        "stop-error-not-a-string",
        lambda c, p: c.stop_durable_execution(DurableExecutionArn=p.arn, Error={"ErrorMessage": 3}),
        InvalidParameterValueException,
        r"Error\.ErrorMessage must be a string, not int\.$",
    ),
    (
        "stop-error-too-large",
        lambda c, p: c.stop_durable_execution(DurableExecutionArn=p.arn, Error={"ErrorMessage": "e" * 40000}),
        RequestTooLargeException,
        r"Error objects are limited to 32 KiB\.$",
    ),
    (
        "callback-malformed-id",
        lambda c, p: c.send_durable_execution_callback_success(CallbackId="not base64!", Result="x"),
        InvalidParameterValueException,
        r"CallbackId must be 1-1024 characters of the base64 alphabet\.$",
    ),
    (
        "callback-unknown-id",
        lambda c, p: c.send_durable_execution_callback_success(CallbackId="dW5rbm93bg==", Result="x"),
        ResourceNotFoundException,
        r"Callback 'dW5rbm93bg==' not found\.$",
    ),
    (
        "callback-result-too-large",
        lambda c, p: c.send_durable_execution_callback_success(CallbackId=p.callback_id, Result=BIG[:262145]),
        RequestTooLargeException,
        r"Callback Result must be at most 256 KiB \(got 262145 bytes\)\.$",
    ),
    (
        "callback-result-not-utf8",
        lambda c, p: c.send_durable_execution_callback_success(CallbackId=p.callback_id, Result=b"\xff"),
        InvalidParameterValueException,
        r"Result must be UTF-8 text \(no lone surrogates\)\.$",
    ),
    (
        "callback-result-not-bytes",
        lambda c, p: c.send_durable_execution_callback_success(CallbackId=p.callback_id, Result=5),
        InvalidParameterValueException,
        r"Result must be bytes or a string\.$",
    ),
    (
        "callback-failure-bad-error",
        lambda c, p: c.send_durable_execution_callback_failure(CallbackId=p.callback_id, Error="no"),
        InvalidParameterValueException,
        r"Error must be an object with only",
    ),
    (
        "callback-failure-unknown-id",
        lambda c, p: c.send_durable_execution_callback_failure(CallbackId="dW5rbm93bg=="),
        ResourceNotFoundException,
        r"Callback 'dW5rbm93bg==' not found\.$",
    ),
    (
        "heartbeat-unknown-id",
        lambda c, p: c.send_durable_execution_callback_heartbeat(CallbackId="dW5rbm93bg=="),
        ResourceNotFoundException,
        r"Callback 'dW5rbm93bg==' not found\.$",
    ),
    (
        "create-existing-function",
        lambda c, p: c.create_function(FunctionName=p.fn, Handler=f"{H}.steps"),
        ResourceConflictException,
        r"Function already exist: t-parked-\w+$",
    ),
    (
        "update-bad-durable-config",
        lambda c, p: c.update_function_configuration(FunctionName=p.fn, DurableConfig={"ExecutionTimeout": 0}),
        InvalidParameterValueException,
        r"DurableConfig\.ExecutionTimeout must be an integer between 1 and 31622400, got 0\.$",
    ),
    (
        "update-unknown-function",
        lambda c, p: c.update_function_configuration(FunctionName="t-no-such-fn", Timeout=5),
        ResourceNotFoundException,
        r"Function not found: .*:function:t-no-such-fn$",
    ),
    (
        "update-stale-revision",
        lambda c, p: c.update_function_configuration(FunctionName=p.fn, Timeout=5, RevisionId="old"),
        ResourceConflictException,
        r"The RevisionId provided does not match the latest RevisionId\.$",
    ),
    (
        "get-function-unknown",
        lambda c, p: c.get_function(FunctionName="t-no-such-fn"),
        ResourceNotFoundException,
        r"Function not found",
    ),
    (
        "list-functions-bad-marker",
        lambda c, p: c.list_functions(Marker="@@@"),
        InvalidParameterValueException,
        r"Marker is invalid",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_refused_and_changes_nothing(
    client: Client, parked: Parked, call: BadCall, error: type[ServiceError], message: str
) -> None:
    before = fingerprint(parked.fn, parked.sync_fn)
    with pytest.raises(error, match=message) as raised:
        call(client, parked)
    assert type(raised.value) is error
    assert raised.value.response["Error"]["Code"] == error.code
    assert fingerprint(parked.fn, parked.sync_fn) == before
    assert execution_row(parked.arn)["status"] == "RUNNING"


BAD_FUNCTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("bad-name", {"FunctionName": "no spaces"}, r"FunctionName 'no spaces' is invalid"),
    ("bad-handler", {"Handler": "nodots"}, r"Handler 'nodots' is invalid: expected 'module\.attribute'"),
    (
        "timeout-zero",
        {"DurableConfig": {"ExecutionTimeout": 0}},
        r"DurableConfig\.ExecutionTimeout must be an integer between 1 and 31622400, got 0\.$",
    ),
    (
        "timeout-over-a-year",
        {"DurableConfig": {"ExecutionTimeout": 31_622_401}},
        r"DurableConfig\.ExecutionTimeout must be an integer between 1 and 31622400",
    ),
    (
        "timeout-not-int",
        {"DurableConfig": {"ExecutionTimeout": "60"}},
        r"DurableConfig\.ExecutionTimeout must be an integer",
    ),
    (
        "retention-91",
        {"DurableConfig": {"RetentionPeriodInDays": 91}},
        r"DurableConfig\.RetentionPeriodInDays must be an integer between 1 and 90, got 91\.$",
    ),
    (
        "unknown-key",
        {"DurableConfig": {"ExecutionTimeout": 60, "Mode": "fast"}},
        r"DurableConfig has unknown keys: \['Mode'\]\.$",
    ),
    (
        "not-an-object",
        {"DurableConfig": "yes"},
        r"DurableConfig must be an object with ExecutionTimeout and RetentionPeriodInDays\.$",
    ),
    ("function-timeout", {"Timeout": 901}, r"Timeout must be an integer between 1 and 900, got 901\.$"),
    ("unknown-parameter", {"Color": "blue"}, r"Unknown parameter\(s\): Color\.$"),
]


@pytest.mark.parametrize(("fields", "message"), [b[1:] for b in BAD_FUNCTIONS], ids=[b[0] for b in BAD_FUNCTIONS])
def test_bad_function_configuration_is_refused_and_nothing_is_registered(
    client: Client, fields: dict[str, Any], message: str
) -> None:
    name = f"t-bad-{uuid.uuid4().hex[:8]}"
    spec = {"FunctionName": name, "Handler": f"{H}.steps", **fields}
    with pytest.raises(InvalidParameterValueException, match=message):
        client.create_function(**spec)
    with pytest.raises(ResourceNotFoundException):
        client.get_function(FunctionName=name)


def test_callback_on_a_completed_callback_is_refused(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"))
    [callback_id] = callback_ids(client, arn)
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result="first")
    terminal(client, arn)
    before = fingerprint(execution_row(arn)["function_name"])
    with pytest.raises(
        InvalidParameterValueException, match=f"Callback '{callback_id}' is already completed \\(status SUCCEEDED\\)"
    ):
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result="second")
    with pytest.raises(InvalidParameterValueException, match="is already completed"):
        client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    assert fingerprint(execution_row(arn)["function_name"]) == before


def test_callback_of_a_stopped_execution_is_refused(client: Client, functions: Register) -> None:
    arn = start(client, functions(f"{H}.parked"))
    [callback_id] = callback_ids(client, arn)
    client.stop_durable_execution(DurableExecutionArn=arn)
    settled(arn)
    before = fingerprint(execution_row(arn)["function_name"])
    with pytest.raises(
        InvalidParameterValueException, match=f"Callback '{callback_id}' belongs to an execution that is STOPPED"
    ):
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result="late")
    assert fingerprint(execution_row(arn)["function_name"]) == before


def test_stopping_a_finished_execution_is_refused(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.steps")
    arn = client.invoke(FunctionName=fn, Payload=payload(n=1))["DurableExecutionArn"]
    before = fingerprint(fn)
    with pytest.raises(
        InvalidParameterValueException, match=r"Durable execution is already SUCCEEDED; it cannot be stopped\.$"
    ):
        client.stop_durable_execution(DurableExecutionArn=arn)
    assert fingerprint(fn) == before


def test_dry_run_validates_without_starting(client: Client, functions: Register) -> None:
    fn = functions(f"{H}.steps")
    response = client.invoke(FunctionName=fn, InvocationType="DryRun", Payload=payload(n=1))
    assert response["StatusCode"] == 204
    assert fingerprint(fn)[1:] == []
