"""The service side of the durable-execution protocol, one PostgreSQL transaction per duty.

Every state change of an execution runs under a row lock on its ``durable_execution`` row
(``SELECT … FOR UPDATE``): checkpoints, timer firings, callbacks, stops and invocation
outcomes are serialised per execution, and the history events they produce are written in
the same transaction. Celery only carries "invoke execution N" messages, sent after commit.

Two duties take no lock beforehand, because each is a single statement that checks its own
precondition: a start (``INSERT … ON CONFLICT DO NOTHING``) and a running invocation's ordinary
checkpoint (an ``UPDATE`` guarded by the sequence numbers the invocation last wrote, with every
other write of the batch conditional on it). When the guard finds that someone else changed the
execution, nothing is written and the checkpoint takes the locked path.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import secrets
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from engine import db, journal, machine, store
from engine.errors import (
    CallbackTimeoutException,
    DurableExecutionAlreadyStartedException,
    InvalidCheckpointError,
    InvalidCheckpointTokenError,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from engine.machine import Clock, Transition

log = logging.getLogger(__name__)
T = TypeVar("T")

REGION = os.environ.get("DURABLE_REGION", "us-east-1")
ACCOUNT = os.environ.get("DURABLE_ACCOUNT_ID", "123456789012")
LEASE_GRACE = timedelta(seconds=2)
REDISPATCH_AFTER = timedelta(seconds=30)
# A message not seen taken from the queue is sent again after this (doubled by each resend).
REDISPATCH_BACKSTOP = timedelta(minutes=5)
DEFAULT_INVOCATION_RETRY = {
    "ImmediateRetries": 3,
    "InitialDelaySeconds": 1,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "MaximumAttempts": 0,
}
REASON_BY_TIMER = {
    "wait": "wait_elapsed",
    "retry": "retry_due",
    "callback_timeout": "callback",
    "callback_heartbeat": "callback",
    "reinvoke": "recovery",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PlainCall:
    """One call of a plain (non-durable) function on behalf of a chained invoke."""

    execution_id: int
    op_id: str
    function_name: str
    payload: str | None


class Dispatcher(Protocol):
    """Queues work for the workers (Celery in production)."""

    def invoke(self, execution_id: int, timeout: float) -> None: ...

    def call_plain(self, call: PlainCall) -> None: ...


_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


@dataclass
class UnitOfWork:
    conn: psycopg.Connection
    now: datetime
    dispatch: dict[int, float] = field(default_factory=dict)
    plain_calls: list[PlainCall] = field(default_factory=list)
    journals_done: list[str] = field(default_factory=list)


@contextmanager
def unit_of_work(now: datetime | None = None, *, transaction: bool = True) -> Iterator[UnitOfWork]:
    """One transaction; the work it requests is queued only after it commits.

    ``transaction=False`` is for work done in a single statement, which autocommits on its own.
    """
    with db.transaction() if transaction else db.pool().connection() as conn:
        work = UnitOfWork(conn, now or utcnow())
        yield work
    try:
        if _dispatcher is not None:
            _send_invokes(_dispatcher, work.dispatch)
            for call in work.plain_calls:
                _dispatcher.call_plain(call)
    finally:  # after the dispatch, which starts the next invocation: these files are nobody's to wait for
        for request_id in work.journals_done:
            journal.discard(request_id)


# --- one optimistic path per duty ---------------------------------------------------------------
#
# Every duty is the same four beats: take a snapshot (the invocation's own view, or one read
# without a lock) → decide with the state machine → write in one guarded statement, or in one
# transaction whose first statement is the guarded UPDATE (``store.lock_if_unchanged``) → if
# the guard matched nothing, another writer got there first: read again and decide again.

# Each retry follows a real change by another writer, so running out of attempts means the
# execution changes faster than a duty can follow: a clear error, never an endless loop.
ATTEMPTS = 10


class ExecutionChanged(Exception):
    """The execution changed after the duty took its snapshot; nothing was written."""


class ExecutionContended(ResourceConflictException):
    """A duty met another writer's change at each of its attempts; nothing was written."""


def optimistically(duty: str, subject: object, attempt: Callable[[int], T]) -> T:
    """Run ``attempt(n)`` until it does not raise ExecutionChanged, at most ATTEMPTS times.
    Attempt 0 may use the caller's cached view; every later one reads the store again."""
    for number in range(ATTEMPTS):
        try:
            return attempt(number)
        except ExecutionChanged:
            log.debug("%s of %s met a change (attempt %d); reading again", duty, subject, number + 1)
    raise ExecutionContended(
        f"The {duty} of {subject} gave up: the execution changed under each of its {ATTEMPTS} attempts. "
        "Nothing was written; try again."
    )


@contextmanager
def guarded_unit_of_work(
    seen: dict[str, Any], now: datetime | None = None
) -> Iterator[tuple[UnitOfWork, dict[str, Any]]]:
    """The transaction of a duty that writes more than one statement. Its first statement takes
    the execution's row lock only if the row is as ``seen`` (the duty's snapshot) has it, and
    yields the row as it is now; raises ExecutionChanged (nothing written) otherwise."""
    with unit_of_work(now) as work:
        execution = store.lock_if_unchanged(work.conn, seen)
        if execution is None:
            raise ExecutionChanged
        yield work, execution


def _send_invokes(dispatcher: Dispatcher, dispatch: dict[int, float]) -> None:
    """Queue the invocations a committed unit of work asked for. A message the broker refuses
    (it is down) is not the work's failure: the execution is marked never dispatched, and the
    re-dispatcher sends it again at its next round."""
    refused = []
    for execution_id, timeout in dispatch.items():
        try:
            dispatcher.invoke(execution_id, timeout)
        except Exception as exc:
            log.warning("could not queue an invocation of execution %s (%s); it will be sent again", execution_id, exc)
            refused.append(execution_id)
    if refused:
        _mark_undispatched(refused)


def _mark_undispatched(execution_ids: list[int]) -> None:
    try:
        with db.pool().connection() as conn:
            store.mark_undispatched(conn, execution_ids)
    except Exception:  # the re-dispatcher's backstop sends them anyway
        log.exception("could not mark executions %s as not dispatched", execution_ids)


# --- tokens, ARNs, ids ------------------------------------------------------------------------


def make_token(execution: dict[str, Any]) -> str:
    raw = f"{execution['id']}.{execution['invocation_seq']}.{execution['token_seq']}"
    return base64.b64encode(raw.encode()).decode()


def parse_token(token: str) -> tuple[int, int, int]:
    try:
        parts = base64.b64decode(token.encode(), validate=True).decode().split(".")
        execution_id, invocation_seq, token_seq = (int(part) for part in parts)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCheckpointTokenError("Invalid checkpoint token") from exc
    return execution_id, invocation_seq, token_seq


def function_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"


def execution_arn(function_name: str, name: str, execution_uuid: str) -> str:
    return f"{function_arn(function_name)}:$LATEST/durable-execution/{name}/{execution_uuid}"


def mint_callback_id(op_id: str) -> str:
    # Opaque and base64-safe; it maps back to the operation through a unique index.
    return base64.b64encode(secrets.token_bytes(24)).decode().replace("/", "A").replace("+", "B")


# --- starting executions ----------------------------------------------------------------------


@dataclass(frozen=True)
class StartRequest:
    function: dict[str, Any]
    name: str | None
    payload: str | None
    invocation_type: str = "Event"
    time_scale: float = 1.0
    parent_arn: str | None = None
    parent_op_id: str | None = None


def start_execution(request: StartRequest) -> tuple[dict[str, Any], bool]:
    """Create an execution (or return the existing one of that name); return (row, created)."""
    return optimistically("start", request.name or "a new execution", partial(_start, request))


def _start(request: StartRequest, _attempt: int) -> tuple[dict[str, Any], bool]:
    # A start is one statement, so it needs no transaction block around it (two round trips fewer).
    with unit_of_work(transaction=False) as work:
        row, created = start_execution_txn(work, request)
    return row, created


def start_execution_txn(work: UnitOfWork, request: StartRequest) -> tuple[dict[str, Any], bool]:
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


def _existing_execution(conn: psycopg.Connection, function_name: str, name: str, payload: str | None) -> dict[str, Any]:
    existing = store.execution_by_name(conn, function_name, name)
    if existing is None:  # purged between the INSERT and this read: the name is free again
        raise ExecutionChanged
    if (existing["input"] or None) != (payload or None):
        raise DurableExecutionAlreadyStartedException(
            f"Durable execution with name {name!r} already exists for function {function_name!r} "
            "with a different payload."
        )
    return existing


def _save_execution(conn: psycopg.Connection, execution: dict[str, Any], *extra: str) -> None:
    fields = [
        "status",
        "result",
        "error",
        "ended_at",
        "invocation_seq",
        "token_seq",
        "running",
        "lease_until",
        "needs_invoke",
        "invoke_reason",
        "dispatched_at",
        "consecutive_failures",
        "op_seq",
        "seen_seq",
        "event_seq",
        "counters",
        *extra,
    ]
    store.update_execution(conn, execution["id"], **{key: execution[key] for key in fields})


def _request_invoke(work: UnitOfWork, execution: dict[str, Any], reason: str, timeout: float | None = None) -> None:
    """Mark that the handler must run again; queue it now unless an invocation is running."""
    execution["needs_invoke"] = True
    execution["invoke_reason"] = reason
    if not execution["running"]:
        execution["dispatched_at"] = work.now
        work.dispatch[execution["id"]] = timeout if timeout is not None else _function_timeout(work.conn, execution)


def _function_timeout(conn: psycopg.Connection, execution: dict[str, Any]) -> float:
    fn = store.get_function(conn, execution["function_name"])
    return _timeout_seconds(fn["timeout"] if fn else None)


def _timeout_seconds(timeout: int | None) -> float:
    """The function's Timeout, or Lambda's default (3 s) for a function deleted since it started."""
    return float(timeout) if timeout is not None else 3.0


# --- checkpoints ------------------------------------------------------------------------------


@dataclass
class CheckpointCache:
    """One invocation's view after its last checkpoint: the execution row as it wrote it, and every
    operation it knows (from its start state and each answer). Exact as long as nobody else has
    changed the execution, which the guarded write checks; then a checkpoint is one statement.
    """

    ops: dict[str, dict[str, Any]]
    execution: dict[str, Any] | None = None
    # When each wait this invocation started is due, to the microsecond as its timer has it: an
    # operation's ScheduledEndTimestamp is only to the millisecond.
    wait_due: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointSnapshot:
    """What a checkpoint decides from: the execution row, the operations the batch refers to,
    the operations the handler has not seen yet, and whether some timer of it is due."""

    execution: dict[str, Any]
    ops: dict[str, dict[str, Any]]
    unseen: list[dict[str, Any]] = field(default_factory=list)
    timers_due: bool = False


Answer = tuple[str | None, list[dict[str, Any]]]


def checkpoint(
    arn: str, token: str, updates: list[dict[str, Any]], cache: CheckpointCache | None = None, *, fresh: bool = False
) -> Answer:
    """Apply one checkpoint batch; return (new token or None, operations the handler has not seen).

    A None token tells the SDK to stop (execution finished, stopped or timed out): it then ends
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
    if change.invokes or change.finish is not None or snapshot.timers_due:
        token_out, delta, execution = _checkpoint_in_transaction(snapshot, change, len(updates), now)
        _remember(cache, execution if token_out is not None else None, delta, change)
        return token_out, delta
    execution, timers_due = _checkpoint_in_one_statement(snapshot, change, len(updates), now)
    delta = list(({op["Id"]: op for op in snapshot.unseen} | {op["Id"]: op for op in change.changed_ops}).values())
    _remember(cache, execution, delta, change)
    if not timers_due:
        return make_token(execution), delta
    # A timer came due while this invocation runs: its own next (empty) checkpoint fires it.
    new_token, fired = checkpoint(arn, make_token(execution), [], cache, fresh=True)
    return new_token, list(({op["Id"]: op for op in delta} | {op["Id"]: op for op in fired}).values())


def cache_execution(cache: CheckpointCache | None) -> dict[str, Any] | None:
    return cache.execution if cache is not None else None


def _cached_snapshot(
    cache: CheckpointCache | None, arn: str, token: str, updates: list[dict[str, Any]]
) -> CheckpointSnapshot | None:
    """The invocation's own view, if it has one and the token is the one it was last given."""
    if cache is None or cache.execution is None:
        return None
    execution = cache.execution
    expected = (execution["id"], execution["invocation_seq"], execution["token_seq"])
    if execution["arn"] != arn or _token_parts(token) != expected:
        return None
    ops = {op_id: cache.ops[op_id] for op_id in _referenced(updates) if op_id in cache.ops}
    return CheckpointSnapshot(execution, ops)


def _read_snapshot(arn: str, updates: list[dict[str, Any]], now: datetime) -> CheckpointSnapshot:
    with db.pool().connection() as conn:
        row = store.read_checkpoint_snapshot(conn, arn, sorted(_referenced(updates)), now)
    if row is None:
        raise InvalidCheckpointTokenError("Invalid checkpoint token")
    execution = {key: row[key] for key in row if key not in SNAPSHOT_EXTRAS}
    ops = {op["Id"]: op for op in row["referenced_ops"]}
    return CheckpointSnapshot(execution, ops, row["unseen_ops"], row["timers_due"])


def _checkpoint_in_one_statement(
    snapshot: CheckpointSnapshot, change: Transition, updates: int, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Nothing but this batch to write: one statement, guarded by the sequence numbers the
    snapshot has. Return the execution as written and whether some timer of it is due."""
    seen = snapshot.execution
    guard = {key: seen[key] for key in ("token_seq", "op_seq", "event_seq")}
    execution = dict(seen, token_seq=seen["token_seq"] + 1)
    _count(execution, checkpoints=1, updates=updates)
    with db.pool().connection() as conn:  # one statement: its own transaction
        written, timers_due = _write_change(
            conn, execution, change, now, invocation_seq=execution["invocation_seq"], mark_seen=True, guard=guard
        )
    if not written:
        raise ExecutionChanged
    return execution, timers_due


def _checkpoint_in_transaction(
    snapshot: CheckpointSnapshot, change: Transition, updates: int, now: datetime
) -> tuple[str | None, list[dict[str, Any]], dict[str, Any]]:
    """A batch that starts chained invokes, finishes the execution, or meets due timers."""
    with guarded_unit_of_work(snapshot.execution, now) as (work, execution):
        _count(execution, checkpoints=1, updates=updates)
        token_out, delta = _checkpoint_general(work, execution, change)
    return token_out, delta, execution


def _remember(
    cache: CheckpointCache | None, execution: dict[str, Any] | None, delta: list[dict[str, Any]], change: Transition
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


SNAPSHOT_EXTRAS = frozenset({"referenced_ops", "unseen_ops", "timers_due"})


def _checkpoint_general(
    work: UnitOfWork, execution: dict[str, Any], change: Transition
) -> tuple[str | None, list[dict[str, Any]]]:
    """A batch that starts chained invokes, finishes the execution, or meets due timers."""
    _apply(work, execution, change, execution["invocation_seq"])
    if change.finish is not None:
        # Answer "completed" (no token) now; the finish itself waits for the invocation's end.
        finish = change.finish
        execution["pending_finish"] = {"status": finish.status, "result": finish.result, "error": finish.error}
        _save_execution(work.conn, execution, "pending_finish")
        return None, []
    execution["token_seq"] += 1
    _fire_due_timers_txn(work, execution)
    delta = store.ops_touched_since(work.conn, execution["id"], execution["seen_seq"])
    execution["seen_seq"] = execution["op_seq"]
    _save_execution(work.conn, execution)
    return make_token(execution), delta


def _check_token(execution: dict[str, Any], token: str) -> None:
    expected = (execution["id"], execution["invocation_seq"], execution["token_seq"])
    if not execution["running"] or parse_token(token) != expected:
        raise InvalidCheckpointTokenError("Invalid checkpoint token")


def _token_parts(token: str) -> tuple[int, int, int] | None:
    try:
        return parse_token(token)
    except InvalidCheckpointTokenError:
        return None


def _count(execution: dict[str, Any], **increments: int) -> None:
    counters = dict(execution.get("counters") or {})
    for key, value in increments.items():
        counters[key] = counters.get(key, 0) + value
    execution["counters"] = counters


def get_state(arn: str, token: str) -> list[dict[str, Any]]:
    """Return every operation of the execution (read-only; the token is checked, not rotated)."""
    with db.transaction() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise InvalidCheckpointTokenError("Invalid checkpoint token")
        _check_token(execution, token)
        return list(store.load_ops(conn, execution["id"]).values())


def _apply(work: UnitOfWork, execution: dict[str, Any], change: Transition, invocation_seq: int | None) -> None:
    """Write a transition: operations, history, timers and chained invokes."""
    for invoke in change.invokes:
        _start_chained_invoke(work, execution, change, invoke)
    # mark_seen=False: the handler sees these in its next answer (or a later invocation).
    _write_change(work.conn, execution, change, work.now, invocation_seq=invocation_seq, mark_seen=False)


def _write_change(
    conn: psycopg.Connection, execution: dict[str, Any], change: Transition, now: datetime, **options: Any
) -> tuple[bool, bool]:
    """``store.write_transition`` of what a transition changed; ``options`` are its keywords."""
    return store.write_transition(
        conn, execution, change.changed_ops, change.events, change.timers, change.cancel_timers, now, **options
    )


def _start_chained_invoke(
    work: UnitOfWork, execution: dict[str, Any], change: Transition, invoke: machine.ChainedInvoke
) -> None:
    op = change.ops[invoke.op_id]
    target = store.get_function(work.conn, function_name_of(invoke.function_name))
    if target is None:
        error = {
            "ErrorType": "ResourceNotFoundException",
            "ErrorMessage": f"Function not found: {invoke.function_name}",
        }
        failed = machine.complete_chained_invoke(op, Clock(work.now), status="FAILED", error=error)
        position = change.events.index(invoke.started_event) + 1
        change.events[position:position] = failed.events
        return
    if target["durable_config"] is None:
        work.plain_calls.append(PlainCall(execution["id"], op["Id"], target["name"], invoke.payload))
        return
    request = StartRequest(
        function=target,
        name=None,
        payload=invoke.payload,
        parent_arn=execution["arn"],
        parent_op_id=op["Id"],
        time_scale=execution["time_scale"],
    )
    child, _ = start_execution_txn(work, request)
    invoke.started_event["ChainedInvokeStartedDetails"]["DurableExecutionArn"] = child["arn"]


def function_name_of(name_or_arn: str) -> str:
    """The function name in a bare name, a name with a qualifier, or a function ARN."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn.split(":")[0]


# --- timers -----------------------------------------------------------------------------------


def fire_due_timers(limit: int = 200, running_grace: timedelta | None = None) -> int:
    """Fire every due timer (one transaction per execution); return how many executions woke.

    ``running_grace`` (the scheduler's) leaves a running invocation's own timers to it for that
    long: it fires them at its next checkpoint or at its end (``complete_invocation``).
    """
    with db.pool().connection() as conn:
        execution_ids = store.due_timer_executions(conn, utcnow(), limit, running_grace)
    return sum(
        guarded("timers", execution_id, partial(_fire_timers_of, execution_id)) for execution_id in execution_ids
    )


def _fire_timers_of(execution_id: int) -> int:
    return optimistically("timer firing", f"execution {execution_id}", partial(_fire_timers, execution_id))


def _fire_timers(execution_id: int, _attempt: int) -> int:
    with db.pool().connection() as conn:
        seen = store.execution_by_id(conn, execution_id)
    if seen is None:
        return 1
    with guarded_unit_of_work(seen) as (work, execution):
        _fire_due_timers_txn(work, execution)
        _save_execution(work.conn, execution)
    return 1


def _fire_due_timers_txn(work: UnitOfWork, execution: dict[str, Any]) -> None:
    for timer in store.take_due_timers(work.conn, work.now, 1000, execution["id"]):
        if execution["status"] != "RUNNING":
            continue
        _fire_timer(work, execution, timer["kind"], timer["op_id"])


def _fire_timer(work: UnitOfWork, execution: dict[str, Any], kind: str, op_id: str) -> None:
    clock = Clock(work.now, execution["time_scale"])
    if kind == "execution_timeout":
        message = f"Execution timed out after {execution['execution_timeout']} seconds."
        _finish_execution(work, execution, machine.Finish("TIMED_OUT", error={"ErrorMessage": message}))
        return
    if kind == "reinvoke":
        _request_invoke(work, execution, "recovery")
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
    _apply_service_change(work, execution, change, REASON_BY_TIMER[kind])


def _apply_service_change(work: UnitOfWork, execution: dict[str, Any], change: Transition, reason: str) -> None:
    if not change.touched:
        return
    _apply(work, execution, change, None)
    _request_invoke(work, execution, reason)


def next_timer_due(running_grace: timedelta | None = None) -> datetime | None:
    with db.pool().connection() as conn:
        return store.next_timer_due(conn, utcnow(), running_grace)


# --- callbacks --------------------------------------------------------------------------------


def _open_callback(callback_id: str) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    """The callback's execution (read without a lock), its operation, and its function's timeout;
    refused if the callback is over."""
    with db.pool().connection() as conn:
        execution = store.execution_by_callback(conn, callback_id)
    if execution is None:
        raise ResourceNotFoundException(f"Callback {callback_id!r} not found.")
    op, fn_timeout = execution.pop("callback_op"), execution.pop("fn_timeout")
    _check_callback_open(callback_id, execution, op)
    return execution, op, fn_timeout


def _check_callback_open(callback_id: str, execution: dict[str, Any], op: dict[str, Any]) -> None:
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
    guard = {key: execution[key] for key in ("token_seq", "op_seq", "event_seq", "invocation_seq", "running")}
    with unit_of_work(now, transaction=False) as work:  # one statement: its own transaction
        written, _ = _write_change(
            work.conn, execution, change, now, invocation_seq=None, mark_seen=False, guard=guard, wake="callback"
        )
        if not written:
            raise ExecutionChanged
        if not execution["running"]:
            work.dispatch[execution["id"]] = _timeout_seconds(fn_timeout)


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


# --- stopping and finishing -------------------------------------------------------------------


def stop_execution(arn: str, error: dict[str, Any] | None) -> datetime:
    """Stop a running execution; return its end time (idempotent for a stopped one)."""
    return optimistically("stop", arn, partial(_stop, arn, error))


def _stop(arn: str, error: dict[str, Any] | None, _attempt: int) -> datetime:
    with db.pool().connection() as conn:
        seen = store.execution_by_arn(conn, arn)
    if seen is None:
        raise ResourceNotFoundException(f"Durable execution {arn!r} not found.")
    if seen["status"] == "STOPPED":
        return seen["ended_at"]
    if seen["status"] != "RUNNING":
        raise InvalidParameterValueException(f"Durable execution is already {seen['status']}; it cannot be stopped.")
    stop_error = error or {"ErrorMessage": "Execution stopped by user request"}
    with guarded_unit_of_work(seen) as (work, execution):
        _finish_execution(work, execution, machine.Finish("STOPPED", error=stop_error))
        _save_execution(work.conn, execution)
    return work.now


def _finish_execution(
    work: UnitOfWork,
    execution: dict[str, Any],
    finish: machine.Finish,
    known_ops: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Close the execution: status, EXECUTION operation, history, timers, and its parent invoke.

    ``known_ops`` (the finishing invocation's exact view, if any) saves reading the EXECUTION
    operation back."""
    execution.update(status=finish.status, result=finish.result, error=finish.error, ended_at=work.now)
    execution["needs_invoke"] = False
    op_id = _execution_op_id(execution)
    known = (known_ops or {}).get(op_id)
    op = dict(known) if known is not None else store.load_ops(work.conn, execution["id"], [op_id])[op_id]
    op, event = _closed_execution_op(op, finish, work.now)
    store.write_transition(work.conn, execution, [op], [event], [], [], work.now, invocation_seq=None, mark_seen=False)
    store.cancel_all_timers_and_announce_done(work.conn, execution["id"], execution["arn"])
    if execution["parent_arn"]:
        _complete_parent_invoke(work, execution, finish)


def _execution_op_id(execution: dict[str, Any]) -> str:
    """The EXECUTION operation's id: the last part of the execution's ARN."""
    return str(execution["arn"]).rsplit("/", 1)[1]


_FINISH_EVENTS = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "STOPPED": "ExecutionStopped",
}


def _closed_execution_op(
    op: dict[str, Any], finish: machine.Finish, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The EXECUTION operation closed by ``finish`` (in place) and its history event."""
    op["Status"] = finish.status
    op["EndTimestamp"] = machine.to_ms(now)
    details = (
        {"Result": machine.payload_detail(finish.result)}
        if finish.status == "SUCCEEDED"
        else {"Error": machine.error_detail(finish.error)}
    )
    return op, machine.make_event(_FINISH_EVENTS[finish.status], op, details)


def _complete_parent_invoke(work: UnitOfWork, child: dict[str, Any], finish: machine.Finish) -> None:
    """Close the parent's chained invoke, in the child's transaction. The parent's row is locked
    only if it is as read; if not, the child's whole duty reads again and retries."""
    seen = store.execution_by_arn(work.conn, child["parent_arn"])
    if seen is None or seen["status"] != "RUNNING":
        return
    op = store.load_ops(work.conn, seen["id"], [child["parent_op_id"]]).get(child["parent_op_id"])
    if op is None or op["Status"] != "STARTED":
        return
    parent = store.lock_if_unchanged(work.conn, seen)
    if parent is None:
        raise ExecutionChanged
    error = finish.error
    if finish.status == "TIMED_OUT":
        error = {"ErrorType": "ChainedInvoke.Timeout", "ErrorMessage": (finish.error or {}).get("ErrorMessage", "")}
    change = machine.complete_chained_invoke(
        op, Clock(work.now, parent["time_scale"]), status=finish.status, result=finish.result, error=error
    )
    _apply_service_change(work, parent, change, "child_finished")
    _save_execution(work.conn, parent)


def complete_plain_invoke(execution_id: int, op_id: str, *, result: str | None, error: dict[str, Any] | None) -> None:
    """Close a chained invoke of a plain (non-durable) function from its one call's outcome."""
    close = partial(_complete_plain_invoke, execution_id, op_id, result, error)
    optimistically("plain invoke's completion", f"execution {execution_id}", close)


def _complete_plain_invoke(
    execution_id: int, op_id: str, result: str | None, error: dict[str, Any] | None, _attempt: int
) -> None:
    with db.pool().connection() as conn:
        seen = store.execution_by_id(conn, execution_id)
        op = store.load_ops(conn, execution_id, [op_id]).get(op_id) if seen is not None else None
    if seen is None or seen["status"] != "RUNNING" or op is None or op["Status"] != "STARTED":
        return
    status = "FAILED" if error is not None else "SUCCEEDED"
    with guarded_unit_of_work(seen) as (work, execution):
        change = machine.complete_chained_invoke(
            op, Clock(work.now, execution["time_scale"]), status=status, result=result, error=error
        )
        _apply_service_change(work, execution, change, "child_finished")
        _save_execution(work.conn, execution)


# --- invocations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    """What one invocation needs: identity, token, operations and the function's configuration."""

    execution_id: int
    arn: str
    seq: int
    request_id: str
    token: str
    operations: list[dict[str, Any]]
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
    values = {
        "execution_id": execution_id,
        "now": now,
        "lease_grace": LEASE_GRACE,
        "request_id": str(uuid.uuid4()),
        "worker": socket.gethostname(),
        "pid": os.getpid(),
        "generation": generation,
    }
    with db.pool().connection() as conn:
        row = store.claim_invocation(conn, values)
        if row is None:
            return _claim_refused(store.unclaimed_execution(conn, execution_id, generation))
        ops, ops_seq = row.pop("ops"), row.pop("ops_seq")
        if ops_seq != row["op_seq"]:
            ops = list(store.load_ops(conn, execution_id).values())
    function = {key[3:]: row.pop(key) for key in ("fn_name", "fn_handler", "fn_timeout", "fn_environment")}
    deadline, faults = row.pop("deadline"), row.pop("faults")
    return Ticket(
        execution_id,
        row["arn"],
        row["invocation_seq"],
        values["request_id"],
        make_token(row),
        ops,
        function,
        now,
        deadline,
        faults,
        CheckpointCache({op["Id"]: op for op in ops}, execution=row),
    )


def _claim_refused(seen: dict[str, Any] | None) -> None:
    """Nothing claimed: drop the message, or fail an execution whose function is gone."""
    if seen is None or not seen["claimable"]:
        return None
    if seen["function_found"]:
        raise ExecutionChanged  # it became claimable after the claim looked: claim again
    with guarded_unit_of_work(seen) as (work, execution):
        error = {"ErrorType": "ResourceNotFoundException", "ErrorMessage": "Function was deleted."}
        _finish_execution(work, execution, machine.Finish("FAILED", error=error))
        _save_execution(work.conn, execution)
    return None


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
    with db.pool().connection() as conn:
        seen, invocation = store.execution_with_invocation(conn, ticket.execution_id, ticket.seq)
    assert seen is not None
    if invocation is None or invocation["ended_at"] is not None:
        return  # already recorded as lost by the sweeper: this invocation is fenced
    with guarded_unit_of_work(seen) as (work, execution):
        known_ops = _known_ops(ticket.cache, execution)
        outcome, error = _judge_output(work, execution, output, raised, known_ops)
        _end_invocation(work, execution, invocation, outcome, error, entries)
        if _apply_pending_finish(work, execution) or execution["status"] != "RUNNING":
            _save_execution(work.conn, execution)
            return
        if outcome == "suspended":
            # Its timers that came due while it ran are this invocation's to fire (the scheduler
            # holds them back), and now they wake the execution at once.
            _fire_due_timers_txn(work, execution)
        if execution["status"] == "RUNNING":
            _after_invocation(work, execution, output, outcome, error, known_ops)
        if execution["status"] == "RUNNING":  # still, after the ending decided what comes next
            store.announce_timers(work.conn, execution["id"])
        _save_execution(work.conn, execution)


def _complete_from_cache(
    ticket: Ticket, output: dict[str, Any] | None, raised: dict[str, Any] | None, entries: list[dict[str, Any]]
) -> bool:
    """The two common endings in one guarded statement, from the invocation's own view: it
    suspended with something to wait for, or it succeeded (with no parent execution to tell).

    Return False, having written nothing, for anything else, or if someone else changed the
    execution since the invocation's last checkpoint: the locked path then decides, as always.
    """
    cache = ticket.cache
    if cache is None or cache.execution is None or raised is not None or not isinstance(output, dict):
        return False
    execution = dict(cache.execution)
    record = journal_record(entries)
    status = output.get("Status")
    if execution["parent_arn"] or record.fired_faults:
        return False
    if status == "PENDING" and machine.has_pending_work(list(cache.ops.values())):
        outcome, finish = "suspended", None
    elif status == "SUCCEEDED" and not output.get("Error"):
        outcome, finish = "succeeded", machine.Finish("SUCCEEDED", result=output.get("Result"))
    else:
        return False
    now = utcnow()
    clock = Clock(now, execution["time_scale"])
    fired = Transition() if finish is not None else _waits_due(cache.ops, cache.wait_due, clock)
    events: list[tuple[dict[str, Any], int | None]] = [
        (_invocation_completed(ticket.started_at, now, ticket.request_id, None), ticket.seq),
        *((event, None) for event in fired.events),
    ]
    ops = []
    if finish is not None:
        op, event = _closed_execution_op(dict(cache.ops[_execution_op_id(execution)]), finish, now)
        ops, events = [op], [*events, (event, None)]
        execution.update(status=finish.status, result=finish.result, ended_at=now)
    guard = {key: execution[key] for key in ("token_seq", "op_seq", "event_seq")}
    execution["token_seq"] += 1
    if record.body_runs:
        _count(execution, body_runs=len(record.body_runs))
    wake = REASON_BY_TIMER["wait"] if fired.touched else None
    fired_ops = fired.changed_ops
    ending = {"now": now, "outcome": outcome, "events": events, "ops": ops, "fired": fired_ops, "wake": wake}
    with unit_of_work(now, transaction=False) as work:  # one statement: its own transaction
        ended = store.end_invocation_guarded(
            work.conn, execution, ticket.seq, guard, ending, (record.body_runs, record.log_lines)
        )
        if ended is not None:
            work.journals_done.append(ticket.request_id)
            if wake is not None:
                work.dispatch[execution["id"]] = _timeout_seconds(ended["fn_timeout"])
    return ended is not None


def _waits_due(ops: dict[str, dict[str, Any]], wait_due: dict[str, datetime], clock: Clock) -> Transition:
    """The invocation's waits whose time has come, completed (on copies), as their timers would.

    A wait this invocation started is due when its timer is (``wait_due``, exact to the
    microsecond, as the ending's guard checks). Of any other wait only the millisecond end is
    known: it is due once that is a whole millisecond past, when its timer must be due too.
    """
    now_ms = machine.to_ms(clock.now)
    change = Transition()
    for op in ops.values():
        if op["Type"] == "WAIT" and op["Status"] == "STARTED" and _wait_is_due(op, wait_due, clock.now, now_ms):
            fired = machine.fire_wait(dict(op), clock)  # it sets top-level keys only: a shallow copy will do
            change.touch(fired.ops[op["Id"]])
            change.events += fired.events
    return change


def _wait_is_due(op: dict[str, Any], wait_due: dict[str, datetime], now: datetime, now_ms: int) -> bool:
    due = wait_due.get(op["Id"])
    if due is not None:
        return due <= now
    scheduled_end = (op.get("WaitDetails") or {}).get("ScheduledEndTimestamp")
    return scheduled_end is not None and scheduled_end < now_ms


def _apply_pending_finish(work: UnitOfWork, execution: dict[str, Any]) -> bool:
    """Close an execution the SDK finished from a checkpoint, now that its invocation has ended."""
    pending = execution.get("pending_finish")
    if pending is None or execution["status"] != "RUNNING":
        return False
    execution["pending_finish"] = None
    _finish_execution(work, execution, machine.Finish(pending["status"], pending["result"], pending["error"]))
    _save_execution(work.conn, execution, "pending_finish")
    return True


def _known_ops(cache: CheckpointCache | None, execution: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Every operation of the execution by id, from the invocation's cache, if nobody else has
    touched one since the invocation's last checkpoint (its op sequence number is the stored one)."""
    if cache is None or cache.execution is None or cache.execution["op_seq"] != execution["op_seq"]:
        return None
    return cache.ops


def _judge_output(
    work: UnitOfWork,
    execution: dict[str, Any],
    output: dict[str, Any] | None,
    raised: dict[str, Any] | None,
    known_ops: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """The invocation's outcome from its output; ``known_ops`` (all operations, if known) saves
    reading them back to check that a PENDING output has something to wait for."""
    if raised is not None:
        return "failed", raised
    if not isinstance(output, dict) or output.get("Status") not in {"SUCCEEDED", "FAILED", "PENDING"}:
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "Invalid handler output."}
    status = output["Status"]
    if status == "FAILED" and output.get("Result"):
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "FAILED output with Result."}
    if status == "SUCCEEDED" and output.get("Error"):
        return "failed", {"ErrorType": "InvalidParameterValueException", "ErrorMessage": "SUCCEEDED output with Error."}
    if status == "PENDING" and execution["status"] == "RUNNING":
        unseen = execution["op_seq"] > execution["seen_seq"]
        pending = (
            machine.has_pending_work(list(known_ops.values()))
            if known_ops is not None
            else store.has_pending_work(work.conn, execution["id"])
        )
        if not unseen and not pending:
            return "failed", {
                "ErrorType": "InvalidParameterValueException",
                "ErrorMessage": "Cannot return PENDING status with no pending operations.",
            }
    return {"SUCCEEDED": "succeeded", "FAILED": "failed", "PENDING": "suspended"}[status], None


def _end_invocation(
    work: UnitOfWork,
    execution: dict[str, Any],
    invocation: dict[str, Any],
    outcome: str,
    error: dict[str, Any] | None,
    entries: list[dict[str, Any]],
) -> None:
    """Write InvocationCompleted, the invocation's outcome and its journal in one statement, and
    release the lease; a new token sequence fences the old one."""
    event = _invocation_completed(invocation["started_at"], work.now, invocation["request_id"], error)
    record = journal_record(entries)
    if record.body_runs:
        _count(execution, body_runs=len(record.body_runs))
    for fault_id, at in record.fired_faults:
        store.mark_fault_fired(work.conn, fault_id, at, invocation["seq"])
    execution["event_seq"] += 1
    store.end_invocation(
        work.conn,
        execution["id"],
        invocation["seq"],
        {"event_id": execution["event_seq"], "event": event, "now": work.now, "outcome": outcome, "error": error},
        record.body_runs,
        record.log_lines,
    )
    work.journals_done.append(invocation["request_id"])
    if execution["invocation_seq"] == invocation["seq"]:
        execution.update(running=False, lease_until=None, token_seq=execution["token_seq"] + 1)


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
    execution: dict[str, Any],
    output: dict[str, Any] | None,
    outcome: str,
    error: dict[str, Any] | None,
    known_ops: dict[str, dict[str, Any]] | None = None,
) -> None:
    if outcome == "succeeded" and output is not None:
        execution["consecutive_failures"] = 0
        _finish_execution(work, execution, machine.Finish("SUCCEEDED", result=output.get("Result")), known_ops)
    elif outcome == "failed" and error is None and output is not None:
        _finish_execution(work, execution, machine.Finish("FAILED", error=output.get("Error") or {}), known_ops)
    elif outcome == "suspended":
        execution["consecutive_failures"] = 0
        if execution["op_seq"] > execution["seen_seq"]:
            _request_invoke(work, execution, execution["invoke_reason"])
        else:
            execution["needs_invoke"] = False
    else:
        _schedule_recovery(work, execution, error or {})


# Errors of loading the handler: invoking again loads the same code, so the execution fails at
# once (a synchronous caller gets the error now) instead of re-invoking until it times out.
NOT_REINVOKED = frozenset({"Runtime.ImportModuleError", "Runtime.HandlerNotFound", "Runtime.UserCodeSyntaxError"})


def _schedule_recovery(work: UnitOfWork, execution: dict[str, Any], error: dict[str, Any]) -> None:
    """After a failed, crashed or timed-out invocation: invoke again with backoff, or give up."""
    if error.get("ErrorType") in NOT_REINVOKED:
        _finish_execution(work, execution, machine.Finish("FAILED", error=error))
        return
    fn = store.get_function(work.conn, execution["function_name"]) or {}
    policy = invocation_retry_policy(fn.get("invocation_retry"))
    failures = execution["consecutive_failures"] + 1
    execution["consecutive_failures"] = failures
    if policy["MaximumAttempts"] and failures >= policy["MaximumAttempts"]:
        _finish_execution(work, execution, machine.Finish("FAILED", error=error))
        return
    delay = reinvoke_delay(policy, failures, error.get("ErrorType", ""))
    if delay <= 0:
        _request_invoke(work, execution, "recovery", float(fn.get("timeout", 3)))
        return
    execution["needs_invoke"] = False
    due = work.now + timedelta(seconds=delay)
    store.set_timer(work.conn, execution["id"], "reinvoke", "", due)


# Bounds of a stored InvocationRetryPolicy's numbers (key: lowest, highest). A policy stored
# before input was validated may hold NaN (stored as null), infinities or 1e300: the recovery of
# every failed invocation reads it, so it must never raise.
_RETRY_BOUNDS: dict[str, tuple[float, float]] = {
    "ImmediateRetries": (0, 100),
    "InitialDelaySeconds": (0, 86400),
    "BackoffRate": (0, 100),
    "MaxDelaySeconds": (0, 86400),
    "MaximumAttempts": (0, 1_000_000),
}
_INTEGER_SETTINGS = frozenset({"ImmediateRetries", "MaximumAttempts"})


def invocation_retry_policy(stored: Any) -> dict[str, Any]:
    """The function's InvocationRetryPolicy over the defaults, every number finite and in bounds."""
    policy = dict(DEFAULT_INVOCATION_RETRY)
    for key, value in (stored if isinstance(stored, dict) else {}).items():
        if key in _RETRY_BOUNDS:
            policy[key] = _bounded(value, DEFAULT_INVOCATION_RETRY[key], *_RETRY_BOUNDS[key], key in _INTEGER_SETTINGS)
    return policy


def _bounded(value: Any, default: float, lowest: float, highest: float, integer: bool) -> float:
    """``value`` as a number clamped to [lowest, highest]; the default for NaN or a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    if math.isnan(number):
        return default
    number = min(max(number, lowest), highest)
    return int(number) if integer else number


def reinvoke_delay(policy: dict[str, Any], failures: int, error_type: str) -> float:
    """Seconds before invoking again after ``failures`` consecutive failed invocations.

    Runtime crashes are retried at once a few times (as Lambda does); timeouts and handler
    errors back off exponentially up to a cap.
    """
    policy = invocation_retry_policy(policy)
    if error_type.startswith("Runtime.") and failures <= policy["ImmediateRetries"]:
        return 0.0
    # Rates are at most 100 and delays at most a day: 100 ** 150 * 86400 is still a finite float.
    growth = policy["BackoffRate"] ** min(failures - 1, 150)
    return float(min(policy["InitialDelaySeconds"] * growth, policy["MaxDelaySeconds"]))


# --- lost invocations -------------------------------------------------------------------------


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Whether the process has died but its parent has not collected it yet (Linux).

    A Celery worker's parent collects a dead pool child only at its next pool maintenance, up
    to 5 s later; until then the signal test above finds the dead child alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state …": comm may hold spaces and parentheses, the state follows the last ")".
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def recover_lost_invocations(limit: int = 200) -> int:
    """Find invocations whose process died or outlived its Timeout; record and fence them."""
    now = utcnow()
    host = socket.gethostname()
    with db.transaction() as conn:
        running = store.running_invocations(conn, now, limit)
    recovered = 0
    for row in running:
        timed_out = now >= row["deadline"] + LEASE_GRACE
        crashed = row["worker"] == host and not _pid_alive(row["pid"])
        if timed_out or crashed:
            outcome = "timed_out" if timed_out and not crashed else "crashed"
            recovered += guarded("recovery", row["id"], partial(_record_lost, row["id"], row["seq"], outcome))
    return recovered


def mark_invocation_lost(execution_id: int, seq: int, outcome: str) -> int:
    """Record a known-dead invocation at once (a kill the engine itself sent)."""
    return _record_lost(execution_id, seq, outcome)


def mark_process_lost(execution_id: int, pid: int) -> int:
    """Record the execution's invocation lost if process ``pid`` of this host was running it.

    Called by a Celery worker's parent process as soon as the pool child running the invocation
    is gone (a kill, a crash, the Timeout's watchdog), so the crash is recorded, and the function
    invoked again, at once, as Lambda reports a dead sandbox; the journal then says whether it was
    killed, timed out or crashed. The scheduler's liveness check remains the backstop (a whole
    worker lost, another host's worker).
    """
    with db.pool().connection() as conn:
        seq = store.invocation_run_by(conn, execution_id, socket.gethostname(), pid)
    return 0 if seq is None else _record_lost(execution_id, seq, "crashed")


def _record_lost(execution_id: int, seq: int, outcome: str) -> int:
    try:
        return _record_lost_with(execution_id, seq, outcome, None)
    except psycopg.DataError as exc:
        log.error("the journal of execution %s's invocation %s could not be stored: %s", execution_id, seq, exc)
        return _record_lost_with(execution_id, seq, outcome, [unstorable_journal_entry(exc)])


def unstorable_journal_entry(exc: BaseException) -> dict[str, Any]:
    """The log line recorded in place of a journal whose entries could not be stored."""
    message = f"The invocation's journal (log lines, step body runs) could not be stored: {exc}"
    return {"t": "log", "at": utcnow().isoformat(), "level": "ERROR", "logger": "durable", "message": message[:4000]}


def _record_lost_with(execution_id: int, seq: int, outcome: str, entries: list[dict[str, Any]] | None) -> int:
    record = partial(_record_lost_once, execution_id, seq, outcome, entries)
    return optimistically("record of a lost invocation", f"execution {execution_id}", record)


def _record_lost_once(
    execution_id: int, seq: int, outcome: str, entries: list[dict[str, Any]] | None, _attempt: int
) -> int:
    with db.pool().connection() as conn:
        seen, invocation = store.execution_with_invocation(conn, execution_id, seq)
    if seen is None or invocation is None or invocation["ended_at"] is not None:
        return 0
    if entries is None:
        entries = journal.read_entries(invocation["request_id"])
    with guarded_unit_of_work(seen) as (work, execution):
        kinds = {entry.get("t") for entry in entries}
        if "fault" in kinds:
            outcome = "killed"
        elif "timeout" in kinds or (outcome == "crashed" and work.now >= invocation["deadline"]):
            outcome = "timed_out"
        error = LOST_ERRORS[outcome]
        _end_invocation(work, execution, invocation, outcome, dict(error), entries)
        if not _apply_pending_finish(work, execution) and execution["status"] == "RUNNING":
            _schedule_recovery(work, execution, dict(error))
        _save_execution(work.conn, execution)
    return 1


@dataclass
class JournalRecord:
    """What the worker's journal adds to the store: step body runs, log lines, fired faults."""

    body_runs: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[dict[str, Any]] = field(default_factory=list)
    fired_faults: list[tuple[int, str]] = field(default_factory=list)


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
            record.fired_faults.append((entry["fault_id"], at))
    record.body_runs.extend(_body_run(start, None, "interrupted") for start in open_runs.values())
    return record


def _body_run(start: dict[str, Any], ended_at: str | None, outcome: str) -> dict[str, Any]:
    return {
        "op_id": start["op_id"],
        "name": start.get("name"),
        "attempt": start["attempt"],
        "started_at": start["at"],
        "ended_at": ended_at,
        "outcome": outcome,
    }


LOST_ERRORS = {
    "timed_out": {"ErrorType": "Sandbox.Timedout", "ErrorMessage": "Task timed out"},
    "crashed": {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Runtime exited without providing a reason"},
    "killed": {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Invocation was killed by fault injection"},
}


def redispatch_stranded(limit: int = 100, now: datetime | None = None) -> int:
    """Queue again the invocations whose message is presumed lost (``store.presumed_lost``); return
    how many were sent. Each waiting invocation has at most one message presumed in flight: a
    slow queue is not flooded. A message carries its generation; the worker drops one that a
    newer message for the same invocation has superseded."""
    with db.pool().connection() as conn:
        rows = store.presumed_lost(conn, now or utcnow(), REDISPATCH_AFTER, REDISPATCH_BACKSTOP, limit)
    return sum(guarded("redispatch", row["id"], partial(_redispatch, row["id"])) for row in rows)


def _redispatch(execution_id: int) -> int:
    if _dispatcher is None:
        return 0
    with db.pool().connection() as conn:
        marked = store.mark_redispatched(conn, execution_id, utcnow())
    if marked is None:
        return 0
    resend = getattr(_dispatcher, "redispatch", None)
    timeout = _timeout_seconds(marked["fn_timeout"])
    try:
        if resend is not None:
            resend(execution_id, timeout, marked["redispatches"])
        else:
            _dispatcher.invoke(execution_id, timeout)
    except Exception as exc:  # the broker is down: not this execution's fault
        log.warning("could not queue an invocation of execution %s again (%s)", execution_id, exc)
        _mark_undispatched([execution_id])
        return 0
    return 1


# --- background loops: a failing item is quarantined, an outage is waited out -----------------

QUARANTINE_AFTER = 3
# (loop, execution id) -> failures in a row and when the first of them happened, in this process.
_failures: dict[tuple[str, int], tuple[int, datetime]] = {}
# Errors that mean the database cannot serve anyone for now, whatever the work: connection
# failures (class 08), a server shutting down or starting (57P01-03), insufficient resources such
# as too many connections (class 53).
_OUTAGE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable, rather than that the work is bad."""
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith(_OUTAGE_SQLSTATES)


# How long a worker that has run a handler waits for the database to record its outcome.
OUTCOME_PATIENCE = 120.0


def through_outages(work: Callable[[], T], what: str, patience: float = OUTCOME_PATIENCE) -> T:
    """Return ``work()``, tried again with a growing pause while the database cannot be reached,
    for up to ``patience`` seconds. For work that must not be lost once done, such as recording
    the outcome of a handler that has already run."""
    give_up = time.monotonic() + patience
    pause = 0.5
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + pause > give_up:
                raise
            log.warning("database unavailable while %s (%s); trying again in %.1f s", what, exc, pause)
        time.sleep(pause)
        db.drop_broken_connections()
        pause = min(pause * 2, 10.0)


def guarded(kind: str, execution_id: int, work: Callable[[], int]) -> int:
    """Run a background loop's ``work`` on one execution; return what it returns, or 0 if it failed.

    A failure is logged and counted, never raised, so that the loop goes on with the other
    executions; after ``QUARANTINE_AFTER`` failures in a row the execution is quarantined
    (marked, shown on its page, and left alone by the loops). A database outage is raised: the
    loop waits it out. A serialization failure or deadlock is left to the next round.
    """
    try:
        done = work()
    except Exception as exc:
        if is_outage(exc):
            raise
        if isinstance(exc, psycopg.errors.TransactionRollback | ExecutionContended):
            log.info("%s of execution %s: %s; trying again next round", kind, execution_id, exc)
            return 0
        _failed(kind, execution_id, exc)
        return 0
    _failures.pop((kind, execution_id), None)
    return done


def _failed(kind: str, execution_id: int, exc: Exception) -> None:
    failures, first = _failures.get((kind, execution_id), (0, utcnow()))
    failures += 1
    log.error(
        "%s failed on execution %s (%d of %d tries)", kind, execution_id, failures, QUARANTINE_AFTER, exc_info=exc
    )
    if failures < QUARANTINE_AFTER:
        _failures[(kind, execution_id)] = (failures, first)
        return
    _failures.pop((kind, execution_id), None)
    error = "".join(traceback.format_exception(exc)[-3:])[-4000:]
    note = {"loop": kind, "failures": failures, "first_failed_at": first.isoformat(), "error": error}
    try:
        with db.pool().connection() as conn:
            store.quarantine(conn, execution_id, note, utcnow())
    except Exception:  # not recorded: counted again from zero, and tried again
        log.exception("could not quarantine execution %s", execution_id)
        return
    log.error("execution %s quarantined after %d failures of the %s loop: %s", execution_id, failures, kind, error)


def release_quarantine(arn: str) -> dict[str, Any]:
    """Release a quarantined execution: the background loops take it again at their next round.

    Only the quarantine is cleared (and this process's failure counts for it): the execution's
    state is as the loops left it. Return the quarantine note it had.
    """
    with db.pool().connection() as conn:
        released = store.release_quarantine(conn, arn)
        if released is None:
            if store.execution_by_arn(conn, arn) is None:
                raise ResourceNotFoundException(f"Durable execution not found: {arn}")
            raise InvalidParameterValueException("Durable execution is not quarantined; there is nothing to release.")
    for key in [key for key in _failures if key[1] == released["id"]]:
        del _failures[key]
    log.warning("execution %s released from quarantine", released["id"])
    return {"QuarantinedAt": released["quarantined_at"], "Quarantine": released["quarantine"]}


# --- retention --------------------------------------------------------------------------------


def purge_expired(limit: int = 500) -> int:
    """Delete executions whose retention period has passed since they ended (frees their names)."""
    with db.transaction() as conn:
        return store.purge_expired(conn, limit)
