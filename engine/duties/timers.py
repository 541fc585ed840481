"""Duty: fire due timers (waits, step retries, callback timeouts, re-invocations, the execution's deadline).

The scheduler calls ``fire_due_timers``; a running invocation fires its own due timers at its
next checkpoint or at its end. Each execution is one read and one guarded transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from engine import db, machine
from engine.duties.finish import finish_execution
from engine.duties.loops import guarded
from engine.duties.transition import apply_service_change
from engine.duties.unit import UnitOfWork, guarded_unit_of_work, optimistically, request_invoke, save_execution, utcnow
from engine.machine import Clock
from engine.rows import ExecutionRow
from engine.store import store

REASON_BY_TIMER = {
    "wait": "wait_elapsed",
    "retry": "retry_due",
    "callback_timeout": "callback",
    "callback_heartbeat": "callback",
    "reinvoke": "recovery",
}


def fire_due_timers(limit: int = 200, running_grace: timedelta | None = None) -> int:
    """Fire every due timer (one transaction per execution); return how many executions woke.

    ``running_grace`` (the scheduler's) leaves a running invocation's own timers to it for that
    long: it fires them at its next checkpoint or at its end (``complete_invocation``).
    """
    with db.connection() as conn:
        execution_ids = store.due_timer_executions(conn, utcnow(), limit, running_grace)
    return sum(
        guarded("timers", execution_id, partial(_fire_timers_of, execution_id)) for execution_id in execution_ids
    )


def _fire_timers_of(execution_id: int) -> int:
    return optimistically("timer firing", f"execution {execution_id}", partial(_fire_timers, execution_id))


def _fire_timers(execution_id: int, _attempt: int) -> int:
    with db.connection() as conn:
        seen = store.execution_by_id(conn, execution_id)
    if seen is None:
        return 1
    with guarded_unit_of_work(seen) as (work, execution):
        fire_due_timers_in(work, execution)
        save_execution(work.conn, execution)
    return 1


def fire_due_timers_in(work: UnitOfWork, execution: ExecutionRow) -> None:
    for timer in store.take_due_timers(work.conn, work.now, 1000, execution["id"]):
        if execution["status"] != "RUNNING":
            continue
        _fire_timer(work, execution, timer.kind, timer.op_id)


def _fire_timer(work: UnitOfWork, execution: ExecutionRow, kind: str, op_id: str) -> None:
    clock = Clock(work.now, execution["time_scale"])
    if kind == "execution_timeout":
        message = f"Execution timed out after {execution['execution_timeout']} seconds."
        finish_execution(work, execution, machine.Finish("TIMED_OUT", error={"ErrorMessage": message}))
        return
    if kind == "reinvoke":
        request_invoke(work, execution, "recovery")
        return
    op = store.load_ops(work.conn, execution["id"], [op_id]).get(op_id)
    if op is None:
        return
    if kind == "wait":
        change = machine.fire_wait(op, clock)
    elif kind == "retry":
        change = machine.fire_retry(op)
    elif op["Status"] == "STARTED":
        error = machine.CALLBACK_TIMEOUT_ERROR if kind == "callback_timeout" else machine.CALLBACK_HEARTBEAT_ERROR
        change = machine.complete_callback(op, clock, status="TIMED_OUT", error=dict(error))
    else:
        return
    apply_service_change(work, execution, change, REASON_BY_TIMER[kind])


def next_timer_due(running_grace: timedelta | None = None) -> datetime | None:
    with db.connection() as conn:
        return store.next_timer_due(conn, utcnow(), running_grace)
