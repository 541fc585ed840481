"""Duties: pause, resume and delete an execution at a user's request.

Pause (AWS's PauseDurableExecution): no invocation is claimed while an execution is paused.
With no invocation running it is PAUSED at once. With one running it is PAUSING: that
invocation's next checkpoint is kept but answered without a token (the SDK then ends the
invocation with PENDING), and the execution is PAUSED from then, or from the invocation's end
if it reaches no checkpoint. Waits, retries and callbacks keep completing while paused, as
AWS documents; the invocation they owe is sent on resume. By default the execution timeout is
paused too: its timer is held and, on resume, moved on by the time spent paused (never past
366 days after the start). The status column stays RUNNING (every "is it live" rule holds as
it is); ``pause_state`` says PAUSING or PAUSED, and the API reports that as the status.

Resume: a PAUSED execution records ExecutionResumed and is invoked if the pause interrupted an
invocation or something completed meanwhile; resuming a PAUSING one cancels the pause (its
invocation goes on). Delete: a terminal execution and every row of it, in one transaction.

Each is one read and one guarded transaction, retried on a change (``unit.optimistically``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from engine import db, machine
from engine.duties.finish import execution_op_id
from engine.duties.unit import (
    UnitOfWork,
    guarded_unit_of_work,
    optimistically,
    request_invoke,
    save_execution,
    utcnow,
)
from engine.errors import ResourceConflictException, ResourceNotFoundException
from engine.rows import ExecutionRow
from engine.store import store

# AWS: "An execution with a paused timeout still times out 366 days after it started."
PAUSED_TIMEOUT_CAP = timedelta(days=366)
# AWS: a request repeated with the same client token within 15 minutes succeeds without effect.
CLIENT_TOKEN_WINDOW = timedelta(minutes=15)


def pause_execution(arn: str, *, reason: str | None, timeout_paused: bool, client_token: str | None) -> None:
    """Pause a running execution (PAUSED now, or PAUSING while an invocation runs)."""
    optimistically("pause", arn, partial(_pause, arn, reason, timeout_paused, client_token))


def _pause(arn: str, reason: str | None, timeout_paused: bool, client_token: str | None, _attempt: int) -> None:
    seen = _read(arn)
    if _repeated(seen, "Pause", client_token, Reason=reason, ExecutionTimeoutPaused=timeout_paused):
        return
    if seen["status"] != "RUNNING":
        raise ResourceConflictException(
            f"Durable execution is {seen['status']}; only a running execution can be paused."
        )
    if seen["pause_state"] is not None:
        raise ResourceConflictException(f"Durable execution is already {seen['pause_state']}.")
    with guarded_unit_of_work(seen) as (work, execution):
        request = {"RequestTimestamp": work.now.isoformat(), "ExecutionTimeoutPaused": timeout_paused}
        if reason is not None:
            request["Reason"] = reason
        if client_token is not None:
            request["ClientToken"] = client_token
        execution["pause_state"], execution["pause"] = "PAUSING", {"Pause": request}
        if not execution["running"]:
            settle_pause(work, execution)
        save_execution(work.conn, execution)


def settle_pause(work: UnitOfWork, execution: ExecutionRow) -> None:
    """PAUSING becomes PAUSED once no invocation is at work: ExecutionPaused in the history, and
    the execution timeout held if the pause asked for that. Called by the pause itself and where
    a running invocation gives way (its checkpoint answered without a token, its end)."""
    if execution["pause_state"] != "PAUSING" or execution["status"] != "RUNNING":
        return
    request = dict(_pause_requests(execution)["Pause"])
    details: dict[str, Any] = {
        "PauseRequestTimestamp": request["RequestTimestamp"],
        "ExecutionTimeoutPaused": request["ExecutionTimeoutPaused"],
    }
    if "Reason" in request:
        details["Reason"] = machine.payload_detail(request["Reason"])
    _record(work, execution, "ExecutionPaused", details)
    request["PausedAt"] = work.now.isoformat()
    if request["ExecutionTimeoutPaused"]:
        due = store.execution_timeout_due(work.conn, execution["id"])
        if due is not None:
            request["TimeoutDue"] = due.isoformat()
            store.set_timer(work.conn, execution["id"], "execution_timeout", "", _timeout_cap(execution))
    execution["pause_state"], execution["pause"] = "PAUSED", {**_pause_requests(execution), "Pause": request}


def resume_execution(arn: str, *, reason: str | None, client_token: str | None) -> None:
    """Resume a paused execution; invoke it if an invocation is owed."""
    optimistically("resume", arn, partial(_resume, arn, reason, client_token))


def _resume(arn: str, reason: str | None, client_token: str | None, _attempt: int) -> None:
    seen = _read(arn)
    if _repeated(seen, "Resume", client_token, Reason=reason):
        return
    if seen["status"] != "RUNNING" or seen["pause_state"] is None:
        status = seen["pause_state"] or seen["status"]
        raise ResourceConflictException(f"Durable execution is {status}; only a paused execution can be resumed.")
    with guarded_unit_of_work(seen) as (work, execution):
        request: dict[str, Any] = {"RequestTimestamp": work.now.isoformat()}
        if reason is not None:
            request["Reason"] = reason
        if client_token is not None:
            request["ClientToken"] = client_token
        if execution["pause_state"] == "PAUSED":
            details: dict[str, Any] = {"ResumeRequestTimestamp": request["RequestTimestamp"]}
            if reason is not None:
                details["Reason"] = machine.payload_detail(reason)
            _record(work, execution, "ExecutionResumed", details)
            _release_timeout(work, execution)
        execution["pause_state"], execution["pause"] = None, {**_pause_requests(execution), "Resume": request}
        if execution["needs_invoke"]:
            request_invoke(work, execution, execution["invoke_reason"])
        save_execution(work.conn, execution)


def delete_execution(arn: str) -> datetime:
    """Delete a terminal execution and every row of it; return when the deletion was accepted."""
    return optimistically("delete", arn, partial(_delete, arn))


def _delete(arn: str, _attempt: int) -> datetime:
    seen = _read(arn)
    if seen["status"] == "RUNNING":
        status = seen["pause_state"] or seen["status"]
        raise ResourceConflictException(
            f"Durable execution is {status}; only a SUCCEEDED, FAILED, STOPPED or TIMED_OUT execution can be deleted."
        )
    with guarded_unit_of_work(seen) as (work, execution):
        store.purge_executions(work.conn, [execution["id"]])
    return work.now


def _read(arn: str) -> ExecutionRow:
    with db.connection() as conn:
        seen = store.execution_by_arn(conn, arn)
    if seen is None:
        raise ResourceNotFoundException(f"Durable execution not found: {arn}")
    return seen


def _repeated(seen: ExecutionRow, kind: str, client_token: str | None, **params: Any) -> bool:
    """Whether this is the last pause (or resume) of the execution sent again with its client
    token and the same parameters within 15 minutes: AWS then answers success and does nothing.
    The same token with other parameters is a new request (and refused as a conflict)."""
    last = (seen["pause"] or {}).get(kind)
    if client_token is None or last is None or last.get("ClientToken") != client_token:
        return False
    if any(last.get(name) != value for name, value in params.items()):
        return False
    return datetime.fromisoformat(last["RequestTimestamp"]) > utcnow() - CLIENT_TOKEN_WINDOW


def _record(work: UnitOfWork, execution: ExecutionRow, event_type: str, details: dict[str, Any]) -> None:
    """Append a service event about the whole execution (its EXECUTION operation's id and name)."""
    op = {"Id": execution_op_id(execution), "Name": execution["name"]}
    event = machine.make_event(event_type, op, details)
    sequences, _, _ = store.write_transition(
        work.conn, execution, [], [event], [], [], work.now, invocation_seq=None, mark_seen=False
    )
    sequences.write_into(execution)


def _timeout_cap(execution: ExecutionRow) -> datetime:
    return execution["started_at"] + PAUSED_TIMEOUT_CAP


def _pause_requests(execution: ExecutionRow) -> dict[str, Any]:
    """The execution's last Pause and Resume requests (a paused or resumed execution has them)."""
    requests = execution["pause"]
    assert requests is not None, "a pause state without its request"
    return requests


def _release_timeout(work: UnitOfWork, execution: ExecutionRow) -> None:
    """Move the held execution timeout on by the time spent paused (at most to the 366-day cap)."""
    request = _pause_requests(execution)["Pause"]
    if "TimeoutDue" not in request:
        return
    paused_for = work.now - datetime.fromisoformat(request["PausedAt"])
    due = min(datetime.fromisoformat(request["TimeoutDue"]) + paused_for, _timeout_cap(execution))
    store.set_timer(work.conn, execution["id"], "execution_timeout", "", due)
