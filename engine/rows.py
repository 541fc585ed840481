"""The engine's vocabulary for the rows it stores: one Status enum per kind, and the sets of them
the engine reasons with. A status is spelled here and imported everywhere else (engine,
dashboard, lab). ``StrEnum`` members are the strings themselves: they compare equal to the text
read from a row or a request, hash alike (``"FAILED" in EXECUTION_ENDED``) and are written to
JSON and SQL as that text, so rows keep plain strings and nothing changes on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Required, TypedDict, cast


class ExecutionStatus(StrEnum):
    """An execution's status as AWS reports it. The ``status`` column holds RUNNING or how it
    ended; a running execution's ``pause_state`` (PAUSING or PAUSED, see engine.duties.pause) is
    reported in RUNNING's place. DELETING is in AWS's list (a filter may name it), but no
    execution is ever seen in it here: a deletion is done when its call returns."""

    RUNNING = "RUNNING"
    PAUSING = "PAUSING"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


class OperationStatus(StrEnum):
    """An operation's status (its document's ``Status`` and the ``status`` column)."""

    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


class InvocationOutcome(StrEnum):
    """How an invocation ended (the invocation row's ``outcome``; NULL while it runs)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUSPENDED = "suspended"  # returned PENDING: it is invoked again when something completes
    CRASHED = "crashed"
    KILLED = "killed"  # by fault injection
    TIMED_OUT = "timed_out"


class HandlerStatus(StrEnum):
    """The ``Status`` of a durable handler's output (the SDK's InvocationStatus, less its
    internal RETRY): how the invocation's outcome is judged."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"


class BodyRunOutcome(StrEnum):
    """How one run of a step's body ended (``durable_body_run.outcome``): the SDK plugin's
    outcome in lower case, or ``interrupted`` when the process died inside the body."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    INTERRUPTED = "interrupted"


class AttemptOutcome(StrEnum):
    """How one attempt of a step went, as the timeline read model shows it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # StepInterruptedError: the process died inside the body
    RUNNING = "running"
    UNFINISHED = "unfinished"  # still open when its execution ended


# The statuses an execution ends in: its ``status`` column never changes after one of these.
EXECUTION_ENDED = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.STOPPED}
)
# A running execution's pause states (``pause_state``), reported as its status.
PAUSE_STATES = frozenset({ExecutionStatus.PAUSING, ExecutionStatus.PAUSED})

# An operation in one of these is done; in the others it is still open.
OPERATION_ENDED = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)
OPERATION_OPEN = frozenset(OperationStatus) - OPERATION_ENDED

# Invocations that ended without the handler returning: the worker died, was killed or ran out
# of time. The engine invokes again after them, as after a failed one.
INVOCATION_LOST = frozenset({InvocationOutcome.CRASHED, InvocationOutcome.KILLED, InvocationOutcome.TIMED_OUT})

# A body run that returned (with a result or an error), rather than being cut short.
BODY_RUN_COMPLETE = frozenset({BodyRunOutcome.SUCCEEDED, BodyRunOutcome.FAILED})
# An attempt that did not succeed: the step's retry (if any) follows it.
ATTEMPT_FAILED = frozenset({AttemptOutcome.FAILED, AttemptOutcome.INTERRUPTED})


class OperationDoc(TypedDict, total=False):
    """An operation as AWS's API has it (``GetDurableExecutionState``'s ``Operations``): the
    document the store keeps in ``durable_operation.doc`` and the SDK reads. A dict because it
    crosses to the SDK and to JSON as it is; the machine works on its own copies."""

    Id: Required[str]
    Type: Required[str]  # EXECUTION, STEP, WAIT, CALLBACK, CONTEXT, CHAINED_INVOKE
    Status: Required[str]  # an OperationStatus
    ParentId: str
    Name: str
    SubType: str
    StartTimestamp: int  # milliseconds since the epoch
    EndTimestamp: int
    ExecutionDetails: dict[str, Any]
    StepDetails: dict[str, Any]
    WaitDetails: dict[str, Any]
    CallbackDetails: dict[str, Any]
    ContextDetails: dict[str, Any]
    ChainedInvokeDetails: dict[str, Any]


class ExecutionRow(TypedDict):
    """An execution row as a duty works on it: its own copy, read from the store, changed by the
    duty and written back (``save_execution``, or the guarded statements). The same columns as
    ``Execution``, which is the read-only form the API answers from."""

    id: int
    arn: str
    function_name: str
    name: str
    input: str | None
    status: str
    result: str | None
    error: dict[str, Any] | None
    started_at: datetime
    ended_at: datetime | None
    execution_timeout: int
    retention_days: int
    time_scale: float
    invocation_type: str
    invocation_seq: int
    token_seq: int
    running: bool
    lease_until: datetime | None
    needs_invoke: bool
    invoke_reason: str
    dispatched_at: datetime | None
    consecutive_failures: int
    op_seq: int
    seen_seq: int
    event_seq: int
    parent_arn: str | None
    parent_op_id: str | None
    counters: dict[str, Any]
    pending_finish: dict[str, Any] | None
    pause_state: str | None
    pause: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Execution:
    """An execution row as the store reads it (``execution_by_arn`` and the list queries select
    exactly these columns: tests/engine/test_rows.py keeps them equal). Read-only: the API's
    answers are built from it; a duty that changes an execution works on its own snapshot."""

    id: int
    arn: str
    function_name: str
    name: str
    input: str | None
    status: str  # an ExecutionStatus: RUNNING or how it ended
    result: str | None
    error: dict[str, Any] | None
    started_at: datetime
    ended_at: datetime | None
    execution_timeout: int
    retention_days: int
    time_scale: float
    invocation_type: str
    invocation_seq: int
    token_seq: int
    running: bool
    lease_until: datetime | None
    needs_invoke: bool
    invoke_reason: str
    dispatched_at: datetime | None
    consecutive_failures: int
    op_seq: int
    seen_seq: int
    event_seq: int
    parent_arn: str | None
    parent_op_id: str | None
    counters: dict[str, Any]
    pending_finish: dict[str, Any] | None
    pause_state: str | None  # PAUSING or PAUSED while a running execution is paused
    pause: dict[str, Any] | None

    @property
    def reported_status(self) -> str:
        """The status AWS shows: a running execution's pause state (PAUSING, PAUSED) if it has one."""
        return self.pause_state or self.status


@dataclass(frozen=True, slots=True)
class Invocation:
    """An invocation row (``durable_invocation``): one run of the handler, from its claim to its
    end. ``outcome`` is None while it runs; ``worker`` and ``pid`` say where."""

    id: int
    execution_id: int
    seq: int
    request_id: str
    reason: str  # why it was invoked: start, wait_elapsed, retry_due, callback, recovery, ...
    started_at: datetime
    ended_at: datetime | None
    deadline: datetime  # started_at + the function's Timeout
    outcome: str | None  # an InvocationOutcome once it ended
    error: dict[str, Any] | None
    worker: str
    pid: int | None
    dispatched_at: datetime | None  # when the message that started it was sent


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A timer taken off ``durable_timer`` to be fired: ``kind`` is wait, retry, callback_timeout,
    callback_heartbeat, reinvoke or execution_timeout; ``op_id`` is "" for the execution's own."""

    execution_id: int
    kind: str
    op_id: str
    due_at: datetime


# The execution row's columns, in the order the store's statements select them.
EXECUTION_COLUMNS = tuple(field.name for field in fields(Execution))


def execution_row(row: Mapping[str, Any]) -> ExecutionRow:
    """A duty's own copy of the execution columns of a wider row (a checkpoint's snapshot, a
    claim, a callback's lookup carry more)."""
    return cast(ExecutionRow, {key: row[key] for key in EXECUTION_COLUMNS})
