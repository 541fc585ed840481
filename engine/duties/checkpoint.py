"""Duty: apply one checkpoint batch from a running invocation.

Snapshot: the invocation's own view (``CheckpointCache``: the row as it last wrote it and every
operation it knows), or one read. Machine: ``machine.apply_batch``. Write: a batch that only
writes is one statement guarded by the token and sequence numbers; a batch that starts chained
invokes, finishes the execution or meets due timers is one transaction opened by the guarded
UPDATE. Guard missed: read again, decide again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from engine import db, machine
from engine.duties.pause import settle_pause
from engine.duties.timers import fire_due_timers_in
from engine.duties.tokens import make_token, mint_callback_id, parse_token, token_parts
from engine.duties.transition import apply_transition, write_change
from engine.duties.unit import (
    ExecutionChanged,
    UnitOfWork,
    add_to_counters,
    guarded_unit_of_work,
    optimistically,
    save_execution,
    sequence_guard,
    utcnow,
)
from engine.errors import (
    InvalidCheckpointError,
    InvalidCheckpointTokenError,
)
from engine.machine import Clock, Transition
from engine.rows import ExecutionRow, OperationDoc, execution_row
from engine.store import store


@dataclass
class CheckpointCache:
    """One invocation's view after its last checkpoint: the execution row as it wrote it, and every
    operation it knows (from its start state and each answer). Exact as long as nobody else has
    changed the execution, which the guarded write checks; then a checkpoint is one statement.
    """

    ops: dict[str, OperationDoc]
    execution: ExecutionRow | None = None
    # When each wait this invocation started is due, to the microsecond as its timer has it: an
    # operation's ScheduledEndTimestamp is only to the millisecond.
    wait_due: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointSnapshot:
    """What a checkpoint decides from: the execution row, the operations the batch refers to,
    the operations the handler has not seen yet, and whether some timer of it is due."""

    execution: ExecutionRow
    ops: dict[str, OperationDoc]
    unseen: list[OperationDoc] = field(default_factory=list)
    timers_due: bool = False


Answer = tuple[str | None, list[OperationDoc]]


def checkpoint(
    arn: str, token: str, updates: list[dict[str, Any]], cache: CheckpointCache | None = None, *, fresh: bool = False
) -> Answer:
    """Apply one checkpoint batch; return (new token or None, operations the handler has not seen).

    A None token tells the SDK to stop (execution finished, stopped, timed out or paused): it then ends
    the invocation with PENDING and sends nothing more. The invocation's ``cache`` is the first
    snapshot (the common case is then one statement); ``fresh`` reads the store instead.
    """
    return optimistically("checkpoint", arn, partial(_checkpoint, arn, token, updates, cache, fresh))


def _checkpoint(
    arn: str, token: str, updates: list[dict[str, Any]], cache: CheckpointCache | None, fresh: bool, attempt: int
) -> Answer:
    now = utcnow()
    snapshot = None if fresh or attempt > 0 else _cached_snapshot(cache, arn, token, updates)
    if snapshot is None:
        snapshot = _read_snapshot(arn, updates, now)
        if snapshot.execution["status"] != "RUNNING" or snapshot.execution["pending_finish"] is not None:
            _remember(cache, None, [], machine.Transition())
            return None, []
        _check_token(snapshot.execution, token)
    clock = Clock(now, snapshot.execution["time_scale"])
    try:
        change = machine.apply_batch(snapshot.ops, updates, clock, mint_callback_id)
    except InvalidCheckpointError:
        if snapshot.execution is cache_execution(cache):
            raise ExecutionChanged from None  # refused by a view that may be stale: judge it from the store
        raise
    paused = snapshot.execution["pause_state"] is not None  # the batch is kept, the token withheld
    if change.invokes or change.finish is not None or snapshot.timers_due or paused:
        token_out, delta, execution = _checkpoint_in_transaction(snapshot, change, len(updates), now)
        _remember(cache, execution if token_out is not None else None, delta, change)
        return token_out, delta
    durable = not (asynchronous_commit_allowed() and machine.may_be_lost_in_a_crash(updates))
    execution, timers_due = _checkpoint_in_one_statement(snapshot, change, len(updates), now, durable)
    delta = list(({op["Id"]: op for op in snapshot.unseen} | {op["Id"]: op for op in change.changed_ops}).values())
    _remember(cache, execution, delta, change)
    if not timers_due:
        return make_token(execution), delta
    # A timer came due while this invocation runs: its own next (empty) checkpoint fires it.
    new_token, fired = checkpoint(arn, make_token(execution), [], cache, fresh=True)
    return new_token, list(({op["Id"]: op for op in delta} | {op["Id"]: op for op in fired}).values())


def cache_execution(cache: CheckpointCache | None) -> ExecutionRow | None:
    return cache.execution if cache is not None else None


def _cached_snapshot(
    cache: CheckpointCache | None, arn: str, token: str, updates: list[dict[str, Any]]
) -> CheckpointSnapshot | None:
    """The invocation's own view, if it has one and the token is the one it was last given."""
    if cache is None or cache.execution is None:
        return None
    execution = cache.execution
    expected = (execution["id"], execution["invocation_seq"], execution["token_seq"])
    if execution["arn"] != arn or token_parts(token) != expected:
        return None
    ops = {op_id: cache.ops[op_id] for op_id in _referenced(updates) if op_id in cache.ops}
    return CheckpointSnapshot(execution, ops)


def _read_snapshot(arn: str, updates: list[dict[str, Any]], now: datetime) -> CheckpointSnapshot:
    with db.connection() as conn:
        row = store.read_checkpoint_snapshot(conn, arn, sorted(_referenced(updates)), now)
    if row is None:
        raise InvalidCheckpointTokenError("Invalid checkpoint token")
    execution = execution_row(row)
    ops = {op["Id"]: op for op in row["referenced_ops"]}
    return CheckpointSnapshot(execution, ops, row["unseen_ops"], row["timers_due"])


def asynchronous_commit_allowed() -> bool:
    """``DURABLE_ASYNC_COMMIT`` (on unless ``off``): may a batch that a database crash may lose
    (``machine.may_be_lost_in_a_crash``) be committed without waiting for the disk?"""
    return os.environ.get("DURABLE_ASYNC_COMMIT", "on").lower() not in {"off", "0", "false", "no"}


def _checkpoint_in_one_statement(
    snapshot: CheckpointSnapshot, change: Transition, updates: int, now: datetime, durable: bool
) -> tuple[ExecutionRow, bool]:
    """Nothing but this batch to write: one statement, guarded by the sequence numbers the
    snapshot has, committed without waiting for the disk unless ``durable``. Return the
    execution as written and whether some timer of it is due."""
    seen = snapshot.execution
    guard = sequence_guard(seen)
    execution = seen.copy()
    execution["token_seq"] += 1
    add_to_counters(execution, checkpoints=1, updates=updates)
    with db.connection() as conn:  # one statement: its own transaction
        written, timers_due = write_change(
            conn,
            execution,
            change,
            now,
            invocation_seq=execution["invocation_seq"],
            mark_seen=True,
            guard=guard,
            durable=durable,
        )
    if not written:
        raise ExecutionChanged
    return execution, timers_due


def _checkpoint_in_transaction(
    snapshot: CheckpointSnapshot, change: Transition, updates: int, now: datetime
) -> tuple[str | None, list[OperationDoc], ExecutionRow]:
    """A batch that starts chained invokes, finishes the execution, or meets due timers."""
    with guarded_unit_of_work(snapshot.execution, now) as (work, execution):
        add_to_counters(execution, checkpoints=1, updates=updates)
        token_out, delta = _checkpoint_general(work, execution, change)
    return token_out, delta, execution


def _remember(
    cache: CheckpointCache | None, execution: ExecutionRow | None, delta: list[OperationDoc], change: Transition
) -> None:
    """Keep the invocation's view current: the row as this checkpoint left it (None once the
    invocation must stop), the operations of the answer, and the exact due time of its waits."""
    if cache is None:
        return
    cache.execution = execution
    cache.ops.update((op["Id"], op) for op in delta)
    cache.wait_due.update((op_id, due) for kind, op_id, due in change.timers if kind == "wait")


def _referenced(updates: list[dict[str, Any]]) -> set[str]:
    return {u["Id"] for u in updates} | {u["ParentId"] for u in updates if u.get("ParentId")}


def _checkpoint_general(
    work: UnitOfWork, execution: ExecutionRow, change: Transition
) -> tuple[str | None, list[OperationDoc]]:
    """A batch that starts chained invokes, finishes the execution, or meets due timers."""
    apply_transition(work, execution, change, execution["invocation_seq"])
    if change.finish is not None:
        # Answer "completed" (no token) now; the finish itself waits for the invocation's end.
        finish = change.finish
        execution["pending_finish"] = {"status": finish.status, "result": finish.result, "error": finish.error}
        save_execution(work.conn, execution, "pending_finish")
        return None, []
    execution["token_seq"] += 1
    fire_due_timers_in(work, execution)
    if execution["pause_state"] is not None:
        # Paused (PauseDurableExecution): no token, so the SDK ends this invocation with PENDING
        # and sends nothing more; what it still had to do runs when the execution is resumed.
        settle_pause(work, execution)
        save_execution(work.conn, execution)
        return None, []
    delta = store.ops_touched_since(work.conn, execution["id"], execution["seen_seq"])
    execution["seen_seq"] = execution["op_seq"]
    save_execution(work.conn, execution)
    return make_token(execution), delta


def _check_token(execution: ExecutionRow, token: str) -> None:
    expected = (execution["id"], execution["invocation_seq"], execution["token_seq"])
    if not execution["running"] or parse_token(token) != expected:
        raise InvalidCheckpointTokenError("Invalid checkpoint token")


def get_state(arn: str, token: str) -> list[OperationDoc]:
    """Return every operation of the execution (read-only; the token is checked, not rotated)."""
    with db.transaction() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise InvalidCheckpointTokenError("Invalid checkpoint token")
        _check_token(execution, token)
        return list(store.load_ops(conn, execution["id"]).values())
