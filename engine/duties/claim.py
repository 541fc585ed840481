"""Duty: claim an execution's invocation for a worker.

One statement takes the lease, records the invocation and reads the operations and the armed
faults. A claim that matches nothing reads why: a duplicate or superseded message is dropped,
an execution whose function was deleted fails.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from engine import db, machine
from engine.duties.checkpoint import CheckpointCache
from engine.duties.finish import finish_execution
from engine.duties.tokens import make_token
from engine.duties.unit import ExecutionChanged, guarded_unit_of_work, optimistically, save_execution, utcnow
from engine.rows import OperationDoc, execution_row
from engine.store import store
from engine.workers import host_id

LEASE_GRACE = timedelta(seconds=2)


@dataclass(frozen=True)
class Ticket:
    """What one invocation needs: identity, token, operations and the function's configuration."""

    execution_id: int
    arn: str
    seq: int
    request_id: str
    token: str
    operations: list[OperationDoc]
    function: dict[str, Any]
    started_at: datetime
    deadline: datetime
    faults: list[dict[str, Any]] = field(default_factory=list)
    # The invocation's view of the execution, kept current by its checkpoints (see CheckpointCache).
    cache: CheckpointCache | None = None


def claim_invocation(execution_id: int, generation: int | None = None) -> Ticket | None:
    """Take the execution's invocation lease, or return None if there is nothing to run.

    The claim is one statement, which also reads the operations; only if it had to wait for
    another writer are they read again after it commits, so that they include everything the
    claim marks as seen. A claim that matches nothing reads why, in one more statement: a
    duplicate message, or one of an older ``generation`` than the execution's last re-dispatch,
    is dropped; an execution whose function was deleted fails.
    """
    return optimistically("claim", f"execution {execution_id}", partial(_claim, execution_id, generation))


def _claim(execution_id: int, generation: int | None, _attempt: int) -> Ticket | None:
    now = utcnow()
    request_id = str(uuid.uuid4())
    values = {
        "execution_id": execution_id,
        "now": now,
        "lease_grace": LEASE_GRACE,
        "request_id": request_id,
        "worker": host_id(),
        "pid": os.getpid(),
        "generation": generation,
    }
    with db.connection() as conn:
        row = store.claim_invocation(conn, values)
        if row is None:
            _claim_refused(store.unclaimed_execution(conn, execution_id, generation))
            return None
        ops: list[OperationDoc] = row["ops"]
        if row["ops_seq"] != row["op_seq"]:
            ops = list(store.load_ops(conn, execution_id).values())
    execution = execution_row(row)
    function = {
        key[3:]: row[key]
        for key in ("fn_name", "fn_handler", "fn_timeout", "fn_environment", "fn_runtime", "fn_code_sha256")
    }
    return Ticket(
        execution_id,
        execution["arn"],
        execution["invocation_seq"],
        request_id,
        make_token(execution),
        ops,
        function,
        now,
        row["deadline"],
        row["faults"],
        CheckpointCache({op["Id"]: op for op in ops}, execution=execution),
    )


def _claim_refused(row: dict[str, Any] | None) -> None:
    """Nothing claimed: drop the message, or fail an execution whose function is gone."""
    if row is None or not row["claimable"]:
        return None
    if row["function_found"]:
        raise ExecutionChanged  # it became claimable after the claim looked: claim again
    with guarded_unit_of_work(execution_row(row)) as (work, execution):
        error = {"ErrorType": "ResourceNotFoundException", "ErrorMessage": "Function was deleted."}
        finish_execution(work, execution, machine.Finish("FAILED", error=error))
        save_execution(work.conn, execution)
    return None
