"""The engine's vocabulary for the rows it stores: one Status enum per kind, and the sets of them
the engine reasons with. A status is spelled here and imported everywhere else (engine,
dashboard, lab). ``StrEnum`` members are the strings themselves: they compare equal to the text
read from a row or a request, hash alike (``"FAILED" in EXECUTION_ENDED``) and are written to
JSON and SQL as that text, so rows keep plain strings and nothing changes on the wire.
"""

from __future__ import annotations

from enum import StrEnum


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
