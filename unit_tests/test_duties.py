"""The duties on the memory store: what each scenario leaves in the history, how many
invocations it took and why, and the guards and retries of the optimistic path."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from engine import db
from engine.duties.checkpoint import checkpoint
from engine.duties.tokens import make_token
from engine.duties.unit import ATTEMPTS, ExecutionChanged, ExecutionContended, optimistically
from engine.errors import InvalidCheckpointTokenError
from engine.store import memory, store
from unit_tests.scenarios import SCENARIOS, Driver, chained_invoke_answered_while_running


def _invocations(database: memory.MemoryDatabase, arn: str) -> list[dict[str, Any]]:
    execution_id = next(row["id"] for row in database.tables.executions.values() if row["arn"] == arn)
    rows = [row for (owner, _), row in sorted(database.tables.invocations.items()) if owner == execution_id]
    return [{"reason": row["reason"], "outcome": row["outcome"]} for row in rows]


def test_a_retry_is_a_new_invocation_after_its_delay(run: Driver, database: memory.MemoryDatabase) -> None:
    arn = SCENARIOS["retry_then_succeed"](run)
    assert run.execution(arn)["Status"] == "SUCCEEDED"
    events = run.events(arn)
    failed = next(e for e in events if e["EventType"] == "StepFailed")
    assert failed["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"] == 1
    assert _invocations(database, arn) == [
        {"reason": "start", "outcome": "suspended"},
        {"reason": "retry_due", "outcome": "succeeded"},
    ]


def test_retries_exhausted_fail_the_execution(run: Driver, database: memory.MemoryDatabase) -> None:
    arn = SCENARIOS["retry_exhaustion"](run)
    execution = run.execution(arn)
    assert execution["Status"] == "FAILED"
    assert run.history(arn).count("StepFailed") == 4
    assert [i["reason"] for i in _invocations(database, arn)] == ["start"] + ["retry_due"] * 3


def test_a_wait_wakes_only_when_due(run: Driver) -> None:
    arn = run.start(run.register("hello", "demos.hello.handler"), {"wait_seconds": 5})
    assert run.run_owed() == 1
    assert run.advance(4.999) == 0
    assert run.run_owed() == 0
    assert run.advance(0.001) == 1
    assert run.run_owed() == 1
    assert run.execution(arn)["Status"] == "SUCCEEDED"


def test_a_callback_answer_invokes_again(run: Driver, database: memory.MemoryDatabase) -> None:
    arn = SCENARIOS["callback_answered"](run)
    execution = run.execution(arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == '{"ok": true}'  # create_callback hands back the raw payload
    assert [i["reason"] for i in _invocations(database, arn)] == ["start", "callback"]


def test_an_answer_written_while_the_invocation_runs_is_met_by_its_guard(
    run: Driver, database: memory.MemoryDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="engine.duties.unit"):
        arn = SCENARIOS["callback_answered_while_running"](run)
    assert json.loads(run.execution(arn)["Result"]) == {"answer": '"answered"', "after": "after"}
    assert any("met a change" in message for message in caplog.messages), "no guard missed: nothing was raced"
    assert len(_invocations(database, arn)) == 1  # the running invocation saw the answer itself


def test_a_callback_timeout_fails_the_execution(run: Driver) -> None:
    arn = SCENARIOS["callback_timed_out"](run)
    execution = run.execution(arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"].endswith("CallbackTimeoutError")
    assert "CallbackTimedOut" in run.history(arn)


def test_a_stop_drops_the_wait_and_is_final(run: Driver, database: memory.MemoryDatabase) -> None:
    arn = SCENARIOS["stopped_while_waiting"](run)
    assert run.execution(arn)["Status"] == "STOPPED"
    assert run.history(arn)[-1] == "ExecutionStopped"
    assert not any(key[0] for key in database.tables.timers)  # no timer left to fire


def test_the_execution_timeout_ends_a_suspended_execution(run: Driver) -> None:
    arn = SCENARIOS["execution_deadline"](run)
    assert run.execution(arn)["Status"] == "TIMED_OUT"
    assert run.history(arn)[-1] == "ExecutionTimedOut"


def test_a_child_context_replays_its_completed_step(run: Driver) -> None:
    arn = SCENARIOS["child_step_and_wait"](run)
    history = run.history(arn)
    assert run.execution(arn)["Status"] == "SUCCEEDED"
    assert history.count("StepStarted") == 1  # the replay after the wait does not run the step again
    assert history.count("InvocationCompleted") == 2


def test_a_stale_token_is_refused(run: Driver) -> None:
    arn = run.start(run.register("hello", "demos.hello.handler"), {"wait_seconds": 5})
    run.run_owed()
    with db.connection() as conn:
        execution = store.execution_by_arn(conn, arn)
    assert execution is not None
    stale = make_token({**execution, "token_seq": execution["token_seq"] - 1})
    with pytest.raises(InvalidCheckpointTokenError):
        checkpoint(arn, stale, [])


def test_a_duty_that_always_meets_a_change_gives_up_with_a_clear_error() -> None:
    tries: list[int] = []

    def always_changed(attempt: int) -> None:
        tries.append(attempt)
        raise ExecutionChanged

    with pytest.raises(ExecutionContended, match=f"each of its {ATTEMPTS} attempts"):
        optimistically("checkpoint", "an execution", always_changed)
    assert tries == list(range(ATTEMPTS))


def test_a_failed_transaction_leaves_nothing(run: Driver, database: memory.MemoryDatabase) -> None:
    arn = run.start(run.register("hello", "demos.hello.handler"))
    before = json.dumps(database.tables.executions, default=str, sort_keys=True)
    with pytest.raises(RuntimeError), db.transaction() as conn:
        row = store.execution_by_arn(conn, arn)
        assert row is not None
        store.update_execution(conn, row["id"], status="FAILED")
        store.set_timer(conn, row["id"], "wait", "x", database.clock.now())
        raise RuntimeError("rolled back")
    assert json.dumps(database.tables.executions, default=str, sort_keys=True) == before
    assert ("wait", "x") not in {(kind, op_id) for _, kind, op_id in database.tables.timers}


def test_what_the_store_returns_is_the_callers_to_change(run: Driver) -> None:
    arn = run.start(run.register("hello", "demos.hello.handler"))
    with db.connection() as conn:
        row = store.execution_by_arn(conn, arn)
        assert row is not None
        row["counters"]["invocations"] = 99
        ops = store.load_ops(conn, row["id"])
        next(iter(ops.values()))["Status"] = "FAILED"
        again = store.execution_by_arn(conn, arn)
        assert again is not None and again["counters"] == {}
        assert next(iter(store.load_ops(conn, row["id"]).values()))["Status"] == "STARTED"


def test_a_chained_invoke_that_ends_while_its_parent_runs_is_closed_when_that_invocation_ends(
    run: Driver, database: memory.MemoryDatabase
) -> None:
    """The target answers before the parent's invocation has ended (here: at once, as the
    checkpoint that started it commits). Its outcome waits on the operation: the history reads
    the invocation's end first, as AWS's does, and the next invocation sees the result."""
    arn = chained_invoke_answered_while_running(run)
    assert run.history(arn) == [
        "ExecutionStarted",
        "ChainedInvokeStarted",
        "InvocationCompleted",
        "ChainedInvokeSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert run.execution(arn)["Result"] == '"ping"'
    assert _invocations(database, arn) == [
        {"reason": "start", "outcome": "suspended"},
        {"reason": "child_finished", "outcome": "succeeded"},
    ]
    assert all(op.get("deferred_outcome") is None for ops in database.tables.operations.values() for op in ops.values())
