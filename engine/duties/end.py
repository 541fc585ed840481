"""Duty: record how an invocation ended and decide what happens next.

The two common endings (suspended with something to wait for; succeeded with no parent to tell)
are one statement from the invocation's own view. Every other ending is one read and one
transaction opened by the guarded UPDATE. Either way a changed execution means: read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import psycopg

from engine import db, journal, machine
from engine.duties.checkpoint import CheckpointCache
from engine.duties.claim import Ticket
from engine.duties.finish import closed_execution_op, execution_op_id, finish_execution
from engine.duties.pause import settle_pause
from engine.duties.recovery import schedule_recovery
from engine.duties.timers import REASON_BY_TIMER, fire_due_timers_in
from engine.duties.transition import apply_deferred_outcomes
from engine.duties.unit import (
    UnitOfWork,
    add_to_counters,
    guarded_unit_of_work,
    optimistically,
    request_invoke,
    save_execution,
    sequence_guard,
    timeout_seconds,
    unit_of_work,
    utcnow,
)
from engine.machine import Clock, Transition
from engine.rows import ExecutionRow, HandlerStatus, Invocation, InvocationOutcome, OperationDoc
from engine.store import store

log = logging.getLogger(__name__)

HANDLER_STATUSES = frozenset(HandlerStatus)


def complete_invocation(ticket: Ticket, output: dict[str, Any] | None, raised: dict[str, Any] | None) -> None:
    """Record how an invocation ended and decide what happens next.

    ``output`` is the handler's return value; ``raised`` the error object when it raised instead.
    """
    entries = journal.read_entries(ticket.request_id)
    try:
        _complete_invocation(ticket, output, raised, entries)
    except psycopg.DataError as exc:
        log.error(
            "the journal of execution %s's invocation %s could not be stored: %s", ticket.execution_id, ticket.seq, exc
        )
        _complete_invocation(ticket, output, raised, [unstorable_journal_entry(exc)])


def _complete_invocation(
    ticket: Ticket, output: dict[str, Any] | None, raised: dict[str, Any] | None, entries: list[dict[str, Any]]
) -> None:
    end = partial(_end, ticket, output, raised, entries)
    optimistically("invocation end", f"execution {ticket.execution_id}", end)


def _end(
    ticket: Ticket,
    output: dict[str, Any] | None,
    raised: dict[str, Any] | None,
    entries: list[dict[str, Any]],
    attempt: int,
) -> None:
    """End the invocation: from its own view in one statement if the ending is one of the two
    common ones, else from one read, in a transaction opened by the guarded UPDATE."""
    if attempt == 0 and _complete_from_cache(ticket, output, raised, entries):
        return
    with db.connection() as conn:
        seen, invocation = store.execution_with_invocation(conn, ticket.execution_id, ticket.seq)
    assert seen is not None
    if invocation is None or invocation.ended_at is not None:
        return  # already recorded as lost by the sweeper: this invocation is fenced
    with guarded_unit_of_work(seen) as (work, execution):
        known_ops = _known_ops(ticket.cache, execution)
        has_pending = partial(_has_pending_work, work, execution, known_ops)
        outcome, error = _judge_output(execution, output, raised, has_pending)
        if outcome == InvocationOutcome.CRASHED and any(entry.get("t") == "fault" for entry in entries):
            outcome = InvocationOutcome.KILLED  # an armed fault killed its runtime process
        close_invocation(work, execution, invocation, outcome, error, entries)
        if apply_pending_finish(work, execution) or execution["status"] != "RUNNING":
            save_execution(work.conn, execution)
            return
        apply_deferred_outcomes(work, execution)
        if outcome == "suspended":
            # Its timers that came due while it ran are this invocation's to fire (the scheduler
            # holds them back), and now they wake the execution at once.
            fire_due_timers_in(work, execution)
        if execution["status"] == "RUNNING":
            # A pause that stopped the handler short owes it an invocation, sent on resume.
            interrupted = execution["pause_state"] is not None and outcome == "suspended" and not has_pending()
            _after_invocation(work, execution, output, outcome, error, known_ops, interrupted)
            settle_pause(work, execution)
        if execution["status"] == "RUNNING":  # still, after the ending decided what comes next
            store.announce_timers(work.conn, execution["id"])
        save_execution(work.conn, execution)


def _complete_from_cache(
    ticket: Ticket, output: dict[str, Any] | None, raised: dict[str, Any] | None, entries: list[dict[str, Any]]
) -> bool:
    """The two common endings in one guarded statement, from the invocation's own view: it
    suspended with something to wait for, or it succeeded (with no parent execution to tell).

    Return False, having written nothing, for anything else, or if someone else changed the
    execution since the invocation's last checkpoint (or a timer it cannot fire itself is due):
    the ending is then decided from one read, in a transaction opened by the guarded UPDATE.
    """
    cache = ticket.cache
    if cache is None or cache.execution is None:
        return False
    execution = cache.execution.copy()
    record = journal_record(entries)
    if (
        execution["parent_arn"]
        or record.fired_faults
        or record.incomplete
        or execution["op_seq"] > execution["seen_seq"]
        or execution["needs_invoke"]
    ):
        # A parent to tell, faults to mark, a gap to mark, operations the handler has not seen,
        # or something that came while it ran (a chained invoke's outcome waits for this ending).
        return False
    has_pending = partial(machine.has_pending_work, list(cache.ops.values()))
    outcome, error = _judge_output(execution, output, raised, has_pending)
    if outcome not in (InvocationOutcome.SUSPENDED, InvocationOutcome.SUCCEEDED):
        return False
    finish = _handler_finish(outcome, output, error)
    now = utcnow()
    clock = Clock(now, execution["time_scale"])
    fired = Transition() if finish is not None else _waits_due(cache.ops, cache.wait_due, clock)
    events: list[tuple[dict[str, Any], int | None]] = [
        (_invocation_completed(ticket.started_at, now, ticket.request_id, None), ticket.seq),
        *((event, None) for event in fired.events),
    ]
    ops = []
    if finish is not None:
        op, event = closed_execution_op(cache.ops[execution_op_id(execution)], finish, now)
        ops, events = [op], [*events, (event, None)]
        execution.update({"status": finish.status, "result": finish.result, "ended_at": now})
    guard = sequence_guard(execution)
    execution["token_seq"] += 1
    if record.body_runs:
        add_to_counters(execution, body_runs=len(record.body_runs))
    wake = REASON_BY_TIMER["wait"] if fired.touched else None
    fired_ops = fired.changed_ops
    ending = {"now": now, "outcome": outcome, "events": events, "ops": ops, "fired": fired_ops, "wake": wake}
    with unit_of_work(now, transaction=False) as work:  # one statement: its own transaction
        ended, sequences = store.end_invocation_guarded(
            work.conn, execution, ticket.seq, guard, ending, (record.body_runs, record.log_lines)
        )
        sequences.write_into(execution)
        if ended is not None:
            work.journals_done.append(ticket.request_id)
            if wake is not None:
                work.dispatch[execution["id"]] = timeout_seconds(ended["fn_timeout"])
    return ended is not None


def _waits_due(ops: Mapping[str, OperationDoc], wait_due: dict[str, datetime], clock: Clock) -> Transition:
    """The invocation's waits whose time has come, completed (on copies), as their timers would.

    A wait this invocation started is due when its timer is (``wait_due``, exact to the
    microsecond, as the ending's guard checks). Of any other wait only the millisecond end is
    known: it is due once that is a whole millisecond past, when its timer must be due too.
    """
    now_ms = machine.to_ms(clock.now)
    change = Transition()
    for op in ops.values():
        if op["Type"] == "WAIT" and op["Status"] == "STARTED" and _wait_is_due(op, wait_due, clock.now, now_ms):
            fired = machine.fire_wait(op, clock)  # completed on the machine's own copy
            change.touch(fired.ops[op["Id"]])
            change.events += fired.events
    return change


def _wait_is_due(op: Mapping[str, Any], wait_due: dict[str, datetime], now: datetime, now_ms: int) -> bool:
    due = wait_due.get(op["Id"])
    if due is not None:
        return due <= now
    scheduled_end = (op.get("WaitDetails") or {}).get("ScheduledEndTimestamp")
    return scheduled_end is not None and scheduled_end < now_ms


def apply_pending_finish(work: UnitOfWork, execution: ExecutionRow) -> bool:
    """Close an execution the SDK finished from a checkpoint, now that its invocation has ended."""
    pending = execution.get("pending_finish")
    if pending is None or execution["status"] != "RUNNING":
        return False
    execution["pending_finish"] = None
    finish_execution(work, execution, machine.Finish(pending["status"], pending["result"], pending["error"]))
    save_execution(work.conn, execution, "pending_finish")
    return True


def _known_ops(cache: CheckpointCache | None, execution: ExecutionRow) -> dict[str, OperationDoc] | None:
    """Every operation of the execution by id, from the invocation's cache, if nobody else has
    touched one since the invocation's last checkpoint (its op sequence number is the stored one)."""
    if cache is None or cache.execution is None or cache.execution["op_seq"] != execution["op_seq"]:
        return None
    return cache.ops


# A runtime process (engine/runtimes) that outlived the Timeout or died is reported by the worker
# that watched it, not found by the sweeper; it is recorded as the in-worker path records the same
# ending, so the timeline draws a timeout and a crash alike in every runtime.
RAISED_OUTCOMES = {
    "Sandbox.Timedout": InvocationOutcome.TIMED_OUT,
    "Runtime.ExitError": InvocationOutcome.CRASHED,
}


def _judge_output(
    execution: ExecutionRow,
    output: dict[str, Any] | None,
    raised: dict[str, Any] | None,
    has_pending: Callable[[], bool],
) -> tuple[str, dict[str, Any] | None]:
    """The invocation's outcome from its output, and the error that made it fail, if the output
    itself is wrong. ``has_pending`` says whether some operation still waits on the service
    (asked only for a PENDING output), from the invocation's view or from the store."""
    if raised is not None:
        return RAISED_OUTCOMES.get(str(raised.get("ErrorType")), InvocationOutcome.FAILED), raised
    if not isinstance(output, dict) or output.get("Status") not in HANDLER_STATUSES:
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "Invalid handler output."}
    status = output["Status"]
    if status == "FAILED" and output.get("Result"):
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "FAILED output with Result."}
    if status == "SUCCEEDED" and output.get("Error"):
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "SUCCEEDED output with Error."}
    if status == "PENDING" and execution["status"] == "RUNNING" and execution["pause_state"] is None:
        # (a paused execution's invocation was told to stop: its PENDING needs nothing pending)
        unseen = execution["op_seq"] > execution["seen_seq"]
        if not unseen and not has_pending():
            return "failed", {
                "ErrorType": "InvalidParameterValueException",
                "ErrorMessage": "Cannot return PENDING status with no pending operations.",
            }
    return {"SUCCEEDED": "succeeded", "FAILED": "failed", "PENDING": "suspended"}[status], None


def _has_pending_work(work: UnitOfWork, execution: ExecutionRow, known_ops: Mapping[str, OperationDoc] | None) -> bool:
    """From every operation, if the invocation's view has them exactly; else one query."""
    if known_ops is not None:
        return machine.has_pending_work(list(known_ops.values()))
    return store.has_pending_work(work.conn, execution["id"])


def _handler_finish(outcome: str, output: dict[str, Any] | None, error: dict[str, Any] | None) -> machine.Finish | None:
    """The finish the handler's own output asks for (its result, or its FAILED error), if any."""
    if outcome == "succeeded" and output is not None:
        return machine.Finish("SUCCEEDED", result=output.get("Result"))
    if outcome == "failed" and error is None and output is not None:
        return machine.Finish("FAILED", error=output.get("Error") or {})
    return None


def close_invocation(
    work: UnitOfWork,
    execution: ExecutionRow,
    invocation: Invocation,
    outcome: str,
    error: dict[str, Any] | None,
    entries: list[dict[str, Any]],
) -> None:
    """Write InvocationCompleted, the invocation's outcome and its journal in one statement, and
    release the lease; a new token sequence fences the old one.

    A record known to be incomplete (its host was lost: only what was shipped remains) is marked
    on the stored invocation's error, ``RecordIncomplete``, which the timeline reads; the history
    event keeps the error as Lambda reports it."""
    event = _invocation_completed(invocation.started_at, work.now, invocation.request_id, error)
    record = journal_record(entries)
    stored_error = error if record.incomplete is None else {**(error or {}), RECORD_INCOMPLETE: record.incomplete}
    if record.body_runs:
        add_to_counters(execution, body_runs=len(record.body_runs))
    for fault_id, at in record.fired_faults:
        store.mark_fault_fired(work.conn, fault_id, at, invocation.seq)
    execution["event_seq"] += 1
    store.end_invocation(
        work.conn,
        execution["id"],
        invocation.seq,
        {
            "event_id": execution["event_seq"],
            "event": event,
            "now": work.now,
            "outcome": outcome,
            "error": stored_error,
        },
        record.body_runs,
        record.log_lines,
    )
    work.journals_done.append(invocation.request_id)
    if execution["invocation_seq"] == invocation.seq:
        execution.update({"running": False, "lease_until": None, "token_seq": execution["token_seq"] + 1})


def _invocation_completed(
    started_at: datetime, now: datetime, request_id: str, error: dict[str, Any] | None
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "StartTimestamp": started_at.isoformat(),
        "EndTimestamp": now.isoformat(),
        "RequestId": request_id,
    }
    if error is not None:
        details["Error"] = machine.error_detail(error)
    return machine.make_event("InvocationCompleted", None, details)


def _after_invocation(
    work: UnitOfWork,
    execution: ExecutionRow,
    output: dict[str, Any] | None,
    outcome: str,
    error: dict[str, Any] | None,
    known_ops: Mapping[str, OperationDoc] | None = None,
    interrupted: bool = False,
) -> None:
    finish = _handler_finish(outcome, output, error)
    if finish is not None:
        if outcome == "succeeded":
            execution["consecutive_failures"] = 0
        finish_execution(work, execution, finish, known_ops)
    elif outcome == "suspended":
        execution["consecutive_failures"] = 0
        if interrupted:
            request_invoke(work, execution, "resume")
        elif execution["op_seq"] > execution["seen_seq"]:
            request_invoke(work, execution, execution["invoke_reason"])
        else:
            execution["needs_invoke"] = False
    else:
        schedule_recovery(work, execution, error or {})


def unstorable_journal_entry(exc: BaseException) -> dict[str, Any]:
    """The log line recorded in place of a journal whose entries could not be stored."""
    message = f"The invocation's journal (log lines, step body runs) could not be stored: {exc}"
    return {"t": "log", "at": utcnow().isoformat(), "level": "ERROR", "logger": "durable", "message": message[:4000]}


# The key of a stored invocation error that says its record is incomplete, and why ("host lost").
RECORD_INCOMPLETE = "RecordIncomplete"


@dataclass
class JournalRecord:
    """What the worker's journal adds to the store: step body runs, log lines, fired faults; and
    why the record is incomplete, if it is known to be (``engine.journal.read_entries``)."""

    body_runs: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[dict[str, Any]] = field(default_factory=list)
    fired_faults: list[tuple[int, str]] = field(default_factory=list)
    incomplete: str | None = None


def journal_record(entries: list[dict[str, Any]]) -> JournalRecord:
    """The rows for what the worker saw; a body start without an end means the process died
    inside that body."""
    open_runs: dict[str, dict[str, Any]] = {}
    record = JournalRecord()
    for entry in entries:
        kind, at = entry.get("t"), entry.get("at")
        if kind == "body_start":
            open_runs[entry["op_id"]] = entry
        elif kind == "body_end" and entry.get("op_id") in open_runs:
            record.body_runs.append(_body_run(open_runs.pop(entry["op_id"]), at, entry["outcome"]))
        elif kind == "log":
            record.log_lines.append({key: entry.get(key) for key in ("at", "level", "logger", "message", "op_id")})
        elif kind == "fault":
            record.fired_faults.append((entry["fault_id"], entry["at"]))  # the journal stamps every line
        elif kind == "record_incomplete":
            record.incomplete = str(entry.get("reason") or "unknown")
            record.log_lines.append(_incomplete_line(entry, record.incomplete))
    record.body_runs.extend(_body_run(start, None, "interrupted") for start in open_runs.values())
    return record


def _incomplete_line(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    """The log line that says, among the invocation's own, where its record stops."""
    last = entry.get("last_shipped_at")
    since = f"nothing after {last} reached the database" if last else "none of it reached the database"
    message = f"record incomplete: {reason}; {since}. Step body runs and log lines after that are missing."
    return {"at": entry.get("at"), "level": "WARNING", "logger": "durable", "message": message, "op_id": None}


def _body_run(start: dict[str, Any], ended_at: str | None, outcome: str) -> dict[str, Any]:
    return {
        "op_id": start["op_id"],
        "name": start.get("name"),
        "attempt": start["attempt"],
        "started_at": start["at"],
        "ended_at": ended_at,
        "outcome": outcome,
    }
