"""Closing an execution: its status, EXECUTION operation, closing event, timers, and the
chained invoke of its parent, if it has one. Shared by the duties that can end an execution
(stop, timers, claim, end, sweep); always inside the caller's guarded transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine import machine
from engine.duties.transition import close_chained_invoke
from engine.duties.unit import ExecutionChanged, UnitOfWork, save_execution
from engine.rows import ExecutionRow, OperationDoc
from engine.store import store


def finish_execution(
    work: UnitOfWork,
    execution: ExecutionRow,
    finish: machine.Finish,
    known_ops: Mapping[str, OperationDoc] | None = None,
) -> None:
    """Close the execution: status, EXECUTION operation, history, timers, and its parent invoke.

    ``known_ops`` (the finishing invocation's exact view, if any) saves reading the EXECUTION
    operation back."""
    execution.update({"status": finish.status, "result": finish.result, "error": finish.error, "ended_at": work.now})
    execution["pause_state"] = None  # a stop (or any end) of a paused execution ends the pause too
    execution["needs_invoke"] = False
    op_id = execution_op_id(execution)
    known = (known_ops or {}).get(op_id)
    stored = known if known is not None else store.load_ops(work.conn, execution["id"], [op_id])[op_id]
    op, event = closed_execution_op(stored, finish, work.now)
    sequences, _, _ = store.write_transition(
        work.conn, execution, [op], [event], [], [], work.now, invocation_seq=None, mark_seen=False
    )
    sequences.write_into(execution)
    store.cancel_all_timers_and_announce_done(work.conn, execution["id"], execution["arn"])
    if execution["parent_arn"]:
        _complete_parent_invoke(work, execution, finish)


def execution_op_id(execution: ExecutionRow) -> str:
    """The EXECUTION operation's id: the last part of the execution's ARN."""
    return str(execution["arn"]).rsplit("/", 1)[1]


_FINISH_EVENTS = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "STOPPED": "ExecutionStopped",
}


def closed_execution_op(
    op: Mapping[str, Any], finish: machine.Finish, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The EXECUTION operation closed by ``finish`` (a new document) and its history event."""
    closed = {**op, "Status": finish.status, "EndTimestamp": machine.to_ms(now)}
    details = (
        {"Result": machine.payload_detail(finish.result)}
        if finish.status == "SUCCEEDED"
        else {"Error": machine.error_detail(finish.error)}
    )
    return closed, machine.make_event(_FINISH_EVENTS[finish.status], closed, details)


def _complete_parent_invoke(work: UnitOfWork, child: ExecutionRow, finish: machine.Finish) -> None:
    """Close the parent's chained invoke, in the child's transaction. The parent's row is locked
    only if it is as read; if not, the child's whole duty reads again and retries."""
    parent_arn, parent_op_id = child["parent_arn"], child["parent_op_id"]
    assert parent_arn is not None and parent_op_id is not None
    seen = store.execution_by_arn(work.conn, parent_arn)
    if seen is None or seen["status"] != "RUNNING":
        return
    op = store.load_ops(work.conn, seen["id"], [parent_op_id]).get(parent_op_id)
    if op is None or op["Status"] != "STARTED":
        return
    parent = store.lock_if_unchanged(work.conn, seen)
    if parent is None:
        raise ExecutionChanged
    error = finish.error
    if finish.status == "TIMED_OUT":
        error = {"ErrorType": "ChainedInvoke.Timeout", "ErrorMessage": (finish.error or {}).get("ErrorMessage", "")}
    close_chained_invoke(work, parent, op, finish.status, finish.result, error)
    save_execution(work.conn, parent)
