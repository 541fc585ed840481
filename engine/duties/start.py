"""Duty: start an execution.

One statement (``INSERT … ON CONFLICT DO NOTHING``) writes the row, its EXECUTION operation,
``ExecutionStarted`` and the execution-timeout timer; a name already taken returns the existing
execution (or refuses a different payload). A chained invoke starts its child the same way,
inside its parent's checkpoint transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine import machine
from engine.db import Conn
from engine.duties.tokens import execution_arn
from engine.duties.unit import ExecutionChanged, UnitOfWork, optimistically, unit_of_work
from engine.errors import (
    DurableExecutionAlreadyStartedException,
)
from engine.machine import Clock
from engine.rows import ExecutionRow
from engine.store import store


@dataclass(frozen=True)
class StartRequest:
    function: dict[str, Any]
    name: str | None
    payload: str | None
    invocation_type: str = "Event"
    time_scale: float = 1.0
    parent_arn: str | None = None
    parent_op_id: str | None = None


def start_execution(request: StartRequest) -> tuple[ExecutionRow, bool]:
    """Create an execution (or return the existing one of that name); return (row, created)."""
    return optimistically("start", request.name or "a new execution", partial(_start, request))


def _start(request: StartRequest, _attempt: int) -> tuple[ExecutionRow, bool]:
    # A start is one statement, so it needs no transaction block around it (two round trips fewer).
    with unit_of_work(transaction=False) as work:
        row, created = start_execution_txn(work, request)
    return row, created


def start_execution_txn(work: UnitOfWork, request: StartRequest) -> tuple[ExecutionRow, bool]:
    fn = request.function
    config = fn["durable_config"] or {}
    execution_uuid = str(uuid.uuid4())
    name = request.name or execution_uuid
    values = {
        "arn": execution_arn(fn["name"], name, execution_uuid),
        "function_name": fn["name"],
        "name": name,
        "input": request.payload,
        "started_at": work.now,
        "execution_timeout": int(config.get("ExecutionTimeout", 86400)),
        "retention_days": int(config.get("RetentionPeriodInDays", 14)),
        "time_scale": request.time_scale,
        "invocation_type": request.invocation_type,
        "parent_arn": request.parent_arn,
        "parent_op_id": request.parent_op_id,
    }
    op = {
        "Id": execution_uuid,
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": machine.to_ms(work.now),
        "ExecutionDetails": {"InputPayload": request.payload or "{}"},
    }
    started = machine.make_event(
        "ExecutionStarted",
        {"Id": execution_uuid, "Name": name},
        {"Input": machine.payload_detail(request.payload), "ExecutionTimeout": values["execution_timeout"]},
    )
    timeout_at = Clock(work.now, request.time_scale).after(values["execution_timeout"])
    row = store.insert_started_execution(work.conn, values, op, started, timeout_at)
    if row is None:
        return _existing_execution(work.conn, fn["name"], name, request.payload), False
    work.dispatch[row["id"]] = fn["timeout"]
    return row, True


def _existing_execution(conn: Conn, function_name: str, name: str, payload: str | None) -> ExecutionRow:
    existing = store.execution_by_name(conn, function_name, name)
    if existing is None:  # purged between the INSERT and this read: the name is free again
        raise ExecutionChanged
    if (existing["input"] or None) != (payload or None):
        raise DurableExecutionAlreadyStartedException(
            f"Durable execution with name {name!r} already exists for function {function_name!r} "
            "with a different payload."
        )
    return existing
