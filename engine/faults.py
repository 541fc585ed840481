"""Fault injection: kill an execution's running invocation now, or arm a kill at a step.

A kill is a SIGKILL of the worker process running the invocation: no error is raised and
unsent checkpoints are lost, as when Lambda kills a sandbox. The invocation is recorded as
killed (``Runtime.ExitError``) as soon as the process is dead (by the worker's parent process,
or the scheduler's liveness sweep) and the function is invoked again at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from datetime import timedelta
from typing import Any

from engine import db, journal
from engine.duties.sweep import mark_invocation_lost
from engine.duties.unit import utcnow
from engine.errors import InvalidParameterValueException, ResourceNotFoundException
from engine.rows import ExecutionRow, Invocation
from engine.sql import Q
from engine.store import store
from engine.workers import host_id, lease_seconds

log = logging.getLogger(__name__)
PHASES = {"body_start", "after_body"}
# How long kill_now waits for another host to record the kill it asked for (it takes ~0.3 s).
REMOTE_KILL_WAIT = 3.0


def _locked_execution(conn: Any, arn: str) -> ExecutionRow:
    execution = store.execution_by_arn(conn, arn, lock=True)
    if execution is None:
        raise ResourceNotFoundException(f"Durable execution not found: {arn}")
    if execution["status"] != "RUNNING":
        raise InvalidParameterValueException(f"Durable execution is {execution['status']}; nothing to inject into.")
    return execution


def kill_now(arn: str, user: str = "") -> dict[str, Any]:
    """SIGKILL the process running the execution's invocation; return the fault record.

    On this host the kill is sent and recorded at once. On another host the fault is recorded
    and, in the same transaction, a ``durable_control`` message asks that host's worker parent
    to send the kill (``engine.worker_host``); its record of the dead child follows. A host that
    is lost cannot be reached: its invocation is recorded lost by the scheduler instead."""
    with db.transaction() as conn:
        execution = _locked_execution(conn, arn)
        invocation = store.get_invocation(conn, execution["id"], execution["invocation_seq"])
        if not execution["running"] or invocation is None or invocation.ended_at is not None:
            raise InvalidParameterValueException("No invocation of this execution is running right now.")
        local = invocation.worker == host_id()
        if not invocation.pid:
            raise InvalidParameterValueException("The running invocation has no process to kill.")
        if not local:
            _check_reachable(conn, invocation)
        fault = conn.execute(
            Q.record_kill_now,
            {
                "execution_id": execution["id"],
                "now": utcnow(),
                "user": user,
                "invocation_seq": invocation.seq,
            },
        ).fetchone()
        if not local:
            store.notify_control(conn, {"kill": _kill_message(invocation)})
    assert fault is not None  # INSERT ... RETURNING
    if local:
        _kill_here(invocation)
    else:
        _await_remote_kill(invocation)
    return dict(fault)


def _kill_message(invocation: Invocation) -> dict[str, Any]:
    return {
        "host": invocation.worker,
        "pid": invocation.pid,
        "execution_id": invocation.execution_id,
        "seq": invocation.seq,
    }


def _check_reachable(conn: Any, invocation: Invocation) -> None:
    """Refuse a kill no worker parent would carry out, saying why."""
    lease = lease_seconds()
    state = store.worker_process_state(conn, invocation.worker, invocation.pid or 0, timedelta(seconds=lease))
    where = f"host {invocation.worker!r}"
    if not state["registered"]:
        raise InvalidParameterValueException(
            f"The running invocation is in process {invocation.pid} on {where}, where no registered worker runs; "
            "it cannot be killed from here."
        )
    if not state["live"]:
        raise InvalidParameterValueException(
            f"The running invocation's {where} is lost (no heartbeat within the {lease:g} s lease): there is nothing "
            "to kill; the scheduler records the invocation Runtime.ExitError and invokes the function again on a live host."
        )
    if not state["process_running"]:
        raise InvalidParameterValueException(
            f"The running invocation's process {invocation.pid} on {where} is not a running worker process; "
            "it cannot be killed from here."
        )


def _kill_here(invocation: Invocation) -> None:
    # If it ended on its own meanwhile, the invocation's own completion and the sweeper sort it out.
    with contextlib.suppress(ProcessLookupError):
        os.kill(invocation.pid or 0, signal.SIGKILL)
    mark_invocation_lost(invocation.execution_id, invocation.seq, "killed")


def _await_remote_kill(invocation: Invocation) -> None:
    """Wait (briefly) for the other host to record the kill, so that, as on this host, the
    invocation is recorded killed when ``kill_now`` returns; a slow host only logs."""
    deadline = time.monotonic() + REMOTE_KILL_WAIT
    while time.monotonic() < deadline:
        with db.connection() as conn:
            current = store.get_invocation(conn, invocation.execution_id, invocation.seq)
        if current is None or current.ended_at is not None:
            return
        time.sleep(0.05)
    log.warning(
        "execution %s: host %s has not recorded the kill of invocation %s after %.0f s",
        invocation.execution_id,
        invocation.worker,
        invocation.seq,
        REMOTE_KILL_WAIT,
    )


def arm(arn: str, step_name: str, phase: str, user: str = "") -> dict[str, Any]:
    """Arm a kill of the next invocation that reaches ``step_name``'s body start or end."""
    if phase not in PHASES:
        raise InvalidParameterValueException(f"phase must be one of {sorted(PHASES)}, got {phase!r}.")
    if not step_name or len(step_name) > 256:
        raise InvalidParameterValueException("step_name must be a step's name (1-256 characters).")
    with db.transaction() as conn:
        execution = _locked_execution(conn, arn)
        fault = conn.execute(
            Q.arm_kill,
            {
                "execution_id": execution["id"],
                "step_name": step_name,
                "phase": phase,
                "now": utcnow(),
                "user": user,
            },
        ).fetchone()
        # Every worker parent signals its own running invocations (engine.worker_host).
        store.notify_control(conn, {"faults": execution["id"]})
    # A running invocation loaded its faults when it began; the signal makes it look again.
    journal.signal_faults_changed(execution["id"])
    assert fault is not None  # INSERT ... RETURNING
    return dict(fault)
