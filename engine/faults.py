"""Fault injection: kill an execution's running invocation now, or arm a kill at a step.

A kill is a SIGKILL of the worker process running the invocation: no error is raised and
unsent checkpoints are lost, as when Lambda kills a sandbox. The invocation is recorded as
killed (``Runtime.ExitError``) as soon as the process is dead (by the worker's parent process,
or the scheduler's liveness sweep) and the function is invoked again at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Any

from engine import db, journal
from engine.duties.sweep import mark_invocation_lost
from engine.duties.unit import utcnow
from engine.errors import InvalidParameterValueException, ResourceNotFoundException
from engine.rows import ExecutionRow
from engine.sql import Q
from engine.store import store

PHASES = {"body_start", "after_body"}


def _locked_execution(conn: Any, arn: str) -> ExecutionRow:
    execution = store.execution_by_arn(conn, arn, lock=True)
    if execution is None:
        raise ResourceNotFoundException(f"Durable execution not found: {arn}")
    if execution["status"] != "RUNNING":
        raise InvalidParameterValueException(f"Durable execution is {execution['status']}; nothing to inject into.")
    return execution


def kill_now(arn: str, user: str = "") -> dict[str, Any]:
    """SIGKILL the process running the execution's invocation; return the fault record."""
    with db.transaction() as conn:
        execution = _locked_execution(conn, arn)
        invocation = store.get_invocation(conn, execution["id"], execution["invocation_seq"])
        if not execution["running"] or invocation is None or invocation.ended_at is not None:
            raise InvalidParameterValueException("No invocation of this execution is running right now.")
        if invocation.worker != socket.gethostname() or not invocation.pid:
            raise InvalidParameterValueException(
                "The running invocation is on another host; it cannot be killed from here."
            )
        fault = conn.execute(
            Q.record_kill_now,
            {
                "execution_id": execution["id"],
                "now": utcnow(),
                "user": user,
                "invocation_seq": invocation.seq,
            },
        ).fetchone()
    # If it ended on its own meanwhile, the invocation's own completion and the sweeper sort it out.
    with contextlib.suppress(ProcessLookupError):
        os.kill(invocation.pid, signal.SIGKILL)
    mark_invocation_lost(execution["id"], invocation.seq, "killed")
    assert fault is not None  # INSERT ... RETURNING
    return dict(fault)


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
    # A running invocation loaded its faults when it began; the signal makes it look again.
    journal.signal_faults_changed(execution["id"])
    assert fault is not None  # INSERT ... RETURNING
    return dict(fault)
