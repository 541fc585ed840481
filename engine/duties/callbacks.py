"""Duties: answers that come from outside the handler.

A callback's success or failure (one read and one guarded statement, no lock: an operator's
approval wakes a suspended handler at once), a callback's heartbeat, and the outcome of a
chained invoke of a plain (non-durable) function.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from engine import db, machine
from engine.duties.transition import close_chained_invoke, write_change
from engine.duties.unit import (
    ExecutionChanged,
    guarded_unit_of_work,
    optimistically,
    save_execution,
    timeout_seconds,
    unit_of_work,
    utcnow,
)
from engine.errors import (
    CallbackTimeoutException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from engine.machine import Clock
from engine.rows import ExecutionRow, OperationDoc, execution_row
from engine.store import store


def _open_callback(callback_id: str) -> tuple[ExecutionRow, OperationDoc, int | None]:
    """The callback's execution (read without a lock), its operation, and its function's timeout;
    refused if the callback is over."""
    with db.connection() as conn:
        row = store.execution_by_callback(conn, callback_id)
    if row is None:
        raise ResourceNotFoundException(f"Callback {callback_id!r} not found.")
    execution, op, fn_timeout = execution_row(row), row["callback_op"], row["fn_timeout"]
    _check_callback_open(callback_id, execution, op)
    return execution, op, fn_timeout


def _check_callback_open(callback_id: str, execution: ExecutionRow, op: dict[str, Any]) -> None:
    """Refuse an answer to a callback that is over. Both states only ever move on from open, so an
    unlocked read that finds either over is as final as a locked one."""
    if op["Status"] == "TIMED_OUT":
        raise CallbackTimeoutException(f"Callback {callback_id!r} has already timed out.")
    if op["Status"] != "STARTED":
        raise InvalidParameterValueException(f"Callback {callback_id!r} is already completed (status {op['Status']}).")
    if execution["status"] != "RUNNING":
        raise InvalidParameterValueException(
            f"Callback {callback_id!r} belongs to an execution that is {execution['status']}."
        )


def complete_callback(
    callback_id: str, *, result: str | None = None, error: dict[str, Any] | None = None, success: bool
) -> None:
    """Record a callback's success or failure and wake the handler.

    An operator's approval wakes a suspended handler: one read and one guarded write, no lock.
    """
    status = "SUCCEEDED" if success else "FAILED"
    answer = partial(_answer_callback, callback_id, status, result, error)
    optimistically("callback answer", f"callback {callback_id!r}", answer)


def _answer_callback(
    callback_id: str, status: str, result: str | None, error: dict[str, Any] | None, _attempt: int
) -> None:
    execution, op, fn_timeout = _open_callback(callback_id)
    now = utcnow()
    change = machine.complete_callback(
        op, Clock(now, execution["time_scale"]), status=status, result=result, error=error
    )
    if not change.touched:
        return
    # Guarded by the row as read, running or not: the handler must then run again, now or
    # after the running invocation ends.
    guard = {
        "token_seq": execution["token_seq"],
        "op_seq": execution["op_seq"],
        "event_seq": execution["event_seq"],
        "invocation_seq": execution["invocation_seq"],
        "running": execution["running"],
        "pause_state": execution["pause_state"],
    }
    with unit_of_work(now, transaction=False) as work:  # one statement: its own transaction
        written, _ = write_change(
            work.conn, execution, change, now, invocation_seq=None, mark_seen=False, guard=guard, wake="callback"
        )
        if not written:
            raise ExecutionChanged
        if not execution["running"] and execution["pause_state"] is None:  # a paused one waits for resume
            work.dispatch[execution["id"]] = timeout_seconds(fn_timeout)


def heartbeat_callback(callback_id: str) -> None:
    """Re-arm a callback's heartbeat timer (no history event)."""
    optimistically("callback heartbeat", f"callback {callback_id!r}", partial(_heartbeat, callback_id))


def _heartbeat(callback_id: str, _attempt: int) -> None:
    seen, op, _ = _open_callback(callback_id)
    with guarded_unit_of_work(seen) as (work, execution):
        heartbeat = store.callback_heartbeat_timeout(work.conn, execution["id"], op["Id"])
        if heartbeat:
            due = Clock(work.now, execution["time_scale"]).after(heartbeat)
            store.set_timer(work.conn, execution["id"], "callback_heartbeat", op["Id"], due)


def complete_plain_invoke(execution_id: int, op_id: str, *, result: str | None, error: dict[str, Any] | None) -> None:
    """Close a chained invoke of a plain (non-durable) function from its one call's outcome."""
    close = partial(_complete_plain_invoke, execution_id, op_id, result, error)
    optimistically("plain invoke's completion", f"execution {execution_id}", close)


def _complete_plain_invoke(
    execution_id: int, op_id: str, result: str | None, error: dict[str, Any] | None, _attempt: int
) -> None:
    with db.connection() as conn:
        seen = store.execution_by_id(conn, execution_id)
        op = store.load_ops(conn, execution_id, [op_id]).get(op_id) if seen is not None else None
    if seen is None or seen["status"] != "RUNNING" or op is None or op["Status"] != "STARTED":
        return
    status = "FAILED" if error is not None else "SUCCEEDED"
    with guarded_unit_of_work(seen) as (work, execution):
        close_chained_invoke(work, execution, op, status, result, error)
        save_execution(work.conn, execution)
