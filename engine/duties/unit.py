"""The unit of work every duty writes through, and the one retry loop they all share.

Every duty has the same four beats: take a snapshot (the invocation's own view, or one read
without a lock) → decide with the pure state machine (``engine.machine``) → write, in one
guarded statement or in one transaction whose first statement is the guarded UPDATE
(``guarded_unit_of_work``) → if the guard matched nothing another writer got there first, so
read again and decide again (``optimistically``, at most ATTEMPTS times, then a clear error).

Celery only carries "invoke execution N" messages; a unit of work queues them after it commits.
The dispatcher is process-wide configuration (``set_dispatcher``, called once at start-up by
the worker, the web process or a test). The duties keep no per-invocation state of their own
(an invocation's view travels in its ``Ticket``): any number of them may run in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from engine import clock, db, journal
from engine.db import Conn
from engine.errors import (
    ResourceConflictException,
)
from engine.rows import ExecutionRow
from engine.store import store

log = logging.getLogger(__name__)


T = TypeVar("T")


def utcnow() -> datetime:
    """Now, by the engine's clock (``engine.clock``: a test may have put a fake one in)."""
    return clock.now()


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


def current_dispatcher() -> Dispatcher | None:
    return _dispatcher


@dataclass
class UnitOfWork:
    conn: Conn
    now: datetime
    dispatch: dict[int, float] = field(default_factory=dict)
    plain_calls: list[PlainCall] = field(default_factory=list)
    journals_done: list[str] = field(default_factory=list)


@contextmanager
def unit_of_work(now: datetime | None = None, *, transaction: bool = True) -> Iterator[UnitOfWork]:
    """One transaction; the work it requests is queued only after it commits.

    ``transaction=False`` is for work done in a single statement, which autocommits on its own.
    """
    with db.transaction() if transaction else db.connection() as conn:
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
def guarded_unit_of_work(seen: ExecutionRow, now: datetime | None = None) -> Iterator[tuple[UnitOfWork, ExecutionRow]]:
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
        mark_undispatched(refused)


def mark_undispatched(execution_ids: list[int]) -> None:
    try:
        with db.connection() as conn:
            store.mark_undispatched(conn, execution_ids)
    except Exception:  # the re-dispatcher's backstop sends them anyway
        log.exception("could not mark executions %s as not dispatched", execution_ids)


def sequence_guard(seen: ExecutionRow) -> dict[str, int]:
    """The guard of a running invocation's own write: the sequence numbers it last saw."""
    return {"token_seq": seen["token_seq"], "op_seq": seen["op_seq"], "event_seq": seen["event_seq"]}


def save_execution(conn: Conn, execution: ExecutionRow, *extra: str) -> None:
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
        "pause_state",
        "pause",
        *extra,
    ]
    columns: Mapping[str, Any] = execution
    store.update_execution(conn, execution["id"], **{key: columns[key] for key in fields})


def request_invoke(work: UnitOfWork, execution: ExecutionRow, reason: str, timeout: float | None = None) -> None:
    """Mark that the handler must run again; queue it now unless an invocation is running or
    the execution is paused (resuming queues it then)."""
    execution["needs_invoke"] = True
    execution["invoke_reason"] = reason
    if not execution["running"] and execution["pause_state"] is None:
        execution["dispatched_at"] = work.now
        work.dispatch[execution["id"]] = timeout if timeout is not None else _function_timeout(work.conn, execution)


def _function_timeout(conn: Conn, execution: ExecutionRow) -> float:
    fn = store.get_function(conn, execution["function_name"])
    return timeout_seconds(fn["timeout"] if fn else None)


def timeout_seconds(timeout: int | None) -> float:
    """The function's Timeout, or Lambda's default (3 s) for a function deleted since it started."""
    return float(timeout) if timeout is not None else 3.0


def add_to_counters(execution: ExecutionRow, **increments: int) -> None:
    counters = dict(execution.get("counters") or {})
    for key, value in increments.items():
        counters[key] = counters.get(key, 0) + value
    execution["counters"] = counters
