"""Writing what the state machine decided: operations, history, timers, and the chained
invokes a batch starts (a durable child starts in the same transaction; a plain function is
called after commit). Shared by the duties that apply a transition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import machine
from engine.db import Conn
from engine.duties.start import StartRequest, start_execution_txn
from engine.duties.tokens import function_name_of
from engine.duties.unit import PlainCall, UnitOfWork, request_invoke
from engine.machine import Clock, Transition
from engine.rows import ExecutionRow, OperationDoc
from engine.store import store


def apply_transition(work: UnitOfWork, execution: ExecutionRow, change: Transition, invocation_seq: int | None) -> None:
    """Write a transition: operations, history, timers and chained invokes."""
    for invoke in change.invokes:
        _start_chained_invoke(work, execution, change, invoke)
    # mark_seen=False: the handler sees these in its next answer (or a later invocation).
    write_change(work.conn, execution, change, work.now, invocation_seq=invocation_seq, mark_seen=False)


def write_change(
    conn: Conn, execution: ExecutionRow, change: Transition, now: datetime, **options: Any
) -> tuple[bool, bool]:
    """``store.write_transition`` of what a transition changed (``options`` are its keywords),
    with ``execution`` brought up to the sequences the write assigned; return (written, some
    timer is due)."""
    sequences, written, timers_due = store.write_transition(
        conn, execution, change.changed_ops, change.events, change.timers, change.cancel_timers, now, **options
    )
    sequences.write_into(execution)
    return written, timers_due


def _start_chained_invoke(
    work: UnitOfWork, execution: ExecutionRow, change: Transition, invoke: machine.ChainedInvoke
) -> None:
    op = change.ops[invoke.op_id]
    target = store.get_function(work.conn, function_name_of(invoke.function_name))
    if target is None:
        error = {
            "ErrorType": "ResourceNotFoundException",
            "ErrorMessage": f"Function not found: {invoke.function_name}",
        }
        failed = machine.complete_chained_invoke(op, Clock(work.now), status="FAILED", error=error)
        change.ops[invoke.op_id] = failed.ops[invoke.op_id]  # the machine closed its own copy
        position = change.events.index(invoke.started_event) + 1
        change.events[position:position] = failed.events
        return
    if target["durable_config"] is None:
        work.plain_calls.append(PlainCall(execution["id"], op["Id"], target["name"], invoke.payload))
        return
    request = StartRequest(
        function=target,
        name=None,
        payload=invoke.payload,
        parent_arn=execution["arn"],
        parent_op_id=op["Id"],
        time_scale=execution["time_scale"],
    )
    child, _ = start_execution_txn(work, request)
    invoke.started_event["ChainedInvokeStartedDetails"]["DurableExecutionArn"] = child["arn"]


def apply_service_change(work: UnitOfWork, execution: ExecutionRow, change: Transition, reason: str) -> None:
    if not change.touched:
        return
    apply_transition(work, execution, change, None)
    request_invoke(work, execution, reason)


def close_chained_invoke(
    work: UnitOfWork,
    execution: ExecutionRow,
    op: OperationDoc,
    status: str,
    result: str | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Close ``execution``'s chained invoke ``op`` from its target's outcome, in ``work`` (the
    execution's row is locked).

    While an invocation of the execution runs, the outcome waits on the operation until that
    invocation ends (``apply_deferred_outcomes``): the handler could not see it before its next
    invocation anyway, and the history then reads InvocationCompleted before the invoke's end,
    as AWS's does, however fast the target was."""
    outcome = {"status": status, "result": result, "error": error}
    if execution["running"]:
        store.defer_outcome(work.conn, execution["id"], op["Id"], outcome)
        request_invoke(work, execution, "child_finished")
        # A new op_seq fences the invocation's one-statement ending, which would not look for it.
        execution["op_seq"] += 1
        return
    clock = Clock(work.now, execution["time_scale"])
    change = machine.complete_chained_invoke(op, clock, status=status, result=result, error=error)
    apply_service_change(work, execution, change, "child_finished")


def apply_deferred_outcomes(work: UnitOfWork, execution: ExecutionRow) -> None:
    """At the end of an invocation (its ending written, the row locked): close the chained
    invokes whose outcome came while it ran. Only such an outcome (or another change that came
    meanwhile) leaves ``needs_invoke`` set on a running execution, so most endings read nothing."""
    if not execution["needs_invoke"]:
        return
    for op, outcome in store.take_deferred_outcomes(work.conn, execution["id"]):
        clock = Clock(work.now, execution["time_scale"])
        change = machine.complete_chained_invoke(
            op, clock, status=outcome["status"], result=outcome.get("result"), error=outcome.get("error")
        )
        apply_transition(work, execution, change, None)
