"""Duty: stop a running execution at a user's request (idempotent for a stopped one)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from engine import db, machine
from engine.duties.finish import finish_execution
from engine.duties.unit import guarded_unit_of_work, optimistically, save_execution
from engine.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from engine.store import store


def stop_execution(arn: str, error: dict[str, Any] | None) -> datetime:
    """Stop a running execution; return its end time (idempotent for a stopped one)."""
    return optimistically("stop", arn, partial(_stop, arn, error))


def _stop(arn: str, error: dict[str, Any] | None, _attempt: int) -> datetime:
    with db.connection() as conn:
        seen = store.execution_by_arn(conn, arn)
    if seen is None:
        raise ResourceNotFoundException(f"Durable execution {arn!r} not found.")
    if seen["status"] == "STOPPED":
        stopped_at = seen["ended_at"]
        assert stopped_at is not None  # an ended execution has its end time
        return stopped_at
    if seen["status"] != "RUNNING":
        raise InvalidParameterValueException(f"Durable execution is already {seen['status']}; it cannot be stopped.")
    stop_error = error or {"ErrorMessage": "Execution stopped by user request"}
    with guarded_unit_of_work(seen) as (work, execution):
        finish_execution(work, execution, machine.Finish("STOPPED", error=stop_error))
        save_execution(work.conn, execution)
    return work.now
