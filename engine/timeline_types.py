"""The timeline read model, written down: what ``engine.timeline`` returns, key by key.

The model crosses to templates, JSON endpoints and the Plotly code, so each part is a
``TypedDict`` (a plain dict at run time, checked by mypy). Every key the timeline produces is
declared here, with the type it has at run time; tests/engine/test_timeline_types.py builds
timelines of real executions and fails on a key that is missing, undeclared or of another type.

Statuses and outcomes are the members of ``engine.rows``' enums (converted where a row is read):
``StrEnum`` members are their strings, so templates, JSON and comparisons see the same text.
Two values are not in those enums: a segment of an attempt ``cut_short`` by its invocation's
end, and a body run still ``running`` in a live invocation (read from its journal).

No ``from __future__ import annotations`` here: Python 3.11 computes ``__required_keys__`` wrongly
for ``NotRequired`` keys written as strings, and the contract test relies on it.
"""

from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from engine.rows import AttemptOutcome, BodyRunOutcome, ExecutionStatus, InvocationOutcome, OperationStatus

# An attempt's share of one invocation that ended before the attempt did (no event closed it there).
SegmentOutcome = AttemptOutcome | Literal["cut_short"]
# A stored run ended one of BodyRunOutcome's ways; a live one may still be running.
BodyRunState = BodyRunOutcome | Literal["running"]


class TimelineExecution(TypedDict):
    """The execution: its row's columns the pages show, and ``queued_since``."""

    arn: str
    name: str
    function_name: str
    status: ExecutionStatus  # RUNNING or how it ended
    pause_state: ExecutionStatus | None  # PAUSING or PAUSED while a running execution is paused
    input: str | None
    result: str | None
    error: dict[str, Any] | None
    started_at: datetime
    ended_at: datetime | None
    execution_timeout: int
    time_scale: float
    invocation_type: str
    parent_arn: str | None
    counters: dict[str, int]  # the engine's running totals (checkpoints, invocations, ...)
    # When the invocation owed now was sent to the workers, while none has taken it up yet.
    queued_since: datetime | None


class InvocationSpan(TypedDict):
    """When an invocation ran: all that replay counting and attempt segments need of it."""

    seq: int
    request_id: str
    started_at: datetime
    ended_at: datetime | None  # None while it runs


class InvocationView(InvocationSpan):
    """An invocation as the timeline lists it."""

    reason: str
    deadline: datetime
    outcome: InvocationOutcome | None  # None while it runs
    error: dict[str, Any] | None
    worker: str
    pid: int | None
    dispatched_at: datetime | None
    queued_at: datetime | None  # when it began to wait for a worker, if it waited noticeably
    # Why its step body runs and log lines are known to be incomplete ("host lost": only what its
    # worker shipped while it ran was kept), or None: the record is whole.
    record_incomplete: str | None


class Replay(TypedDict):
    """An invocation that returned the operation from its checkpoint instead of running it."""

    invocation_seq: int
    at: datetime


class Segment(TypedDict):
    """One attempt's share of one invocation."""

    invocation_seq: int
    started_at: datetime
    ended_at: datetime | None
    outcome: SegmentOutcome


class AttemptRecord(TypedDict):
    """One attempt of a step as its history pairs it: a StepStarted and the StepSucceeded or
    StepFailed that closed it (or none yet)."""

    attempt: int
    invocation_seq: int | None  # where the attempt began (the event's invocation)
    start_seq: int | None  # the invocation of its StepStarted (None: the START was lost)
    close_seq: int | None  # the invocation of the event that closed it (None: still open)
    started_at: datetime
    ended_at: datetime | None
    outcome: AttemptOutcome
    error: dict[str, Any] | None
    next_attempt_delay: int | None  # seconds, as the retry strategy chose them
    retrying: bool


class Attempt(AttemptRecord):
    """An attempt as the timeline draws it: cut into one segment per invocation it ran in."""

    segments: list[Segment]
    invocations: list[int]


class BodyRun(TypedDict):
    """One run of a step's body (its code really ran). A stored run carries its row's ``id``
    and ``execution_id``; a live one, read from a running invocation's journal, ``live``; a run
    cut short by its invocation's end, ``cut_short``."""

    op_id: str
    name: str | None
    invocation_seq: int
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    outcome: BodyRunState
    id: NotRequired[int]
    execution_id: NotRequired[int]
    live: NotRequired[bool]
    cut_short: NotRequired[bool]


class OperationBase(TypedDict):
    """One operation as a row of the timeline, less its attempts (whose type a page may extend)."""

    op_id: str
    parent_id: str | None
    name: str | None
    type: str  # STEP, WAIT, CALLBACK, CONTEXT, CHAINED_INVOKE
    sub_type: str | None
    status: OperationStatus  # settled: an operation still open when its execution ended is ended by it
    recorded_status: OperationStatus  # what the store holds
    ended_by_execution: bool
    started_at: datetime
    ended_at: datetime | None
    depth: int
    callback_id: str | None
    body_runs: list[BodyRun]
    deadline: datetime | None  # a wait's scheduled end, or a callback's timeout
    replays: list[Replay]  # the first MAX_REPLAYS_LISTED
    replay_count: int  # all of them


class TimelineOperation(OperationBase):
    attempts: list[Attempt]


class Effect(TypedDict):
    """A side effect the function recorded (a ``durable_effect`` row)."""

    id: int
    op_id: str | None  # None: outside any operation
    invocation_seq: int | None
    attempt: int | None
    at: datetime
    kind: str
    key: str
    idempotency_key: str | None
    performed: bool
    duplicate: bool
    execution_id: int


class FaultView(TypedDict):
    """An injected fault (a ``durable_fault`` row), armed and perhaps fired."""

    id: int
    kind: str
    step_name: str | None
    phase: str  # body_start, after_body or now
    armed_at: datetime
    armed_by: str
    fired_at: datetime | None
    invocation_seq: int | None
    execution_id: int


class PauseWindow(TypedDict):
    paused_at: datetime
    resumed_at: datetime | None  # None while the pause lasts, or if the execution ended paused


class Counters(TypedDict):
    """What the header counts, over the whole execution (not only the drawn window)."""

    invocations: int
    attempts: int
    failed_attempts: int
    replays: int
    body_runs: int
    checkpoints: int
    effects: int
    duplicate_effects: int
    billed_seconds: float
    wall_seconds: float
    suspended_seconds: float
    reinvoke_seconds: float
    queued_seconds: float


class Timeline(TypedDict):
    """``execution_timeline``: one window of operations, and the whole execution around it."""

    execution: TimelineExecution
    invocations: list[InvocationView]
    operations: list[TimelineOperation]  # the window, in tree order
    operation_count: int  # all operations of the execution
    offset: int
    effects: list[Effect]
    faults: list[FaultView]
    counters: Counters
    last_event_id: int
    pauses: list[PauseWindow]


class OperationEvent(TypedDict):
    """A history event of one operation (a ``durable_event`` row)."""

    event_id: int
    event_type: str
    timestamp: datetime
    invocation_seq: int | None
    doc: dict[str, Any]


class OperationDetail(TypedDict):
    """``operation_detail``: one operation as the timeline sees it, its document and its events."""

    operation: TimelineOperation
    doc: dict[str, Any]
    children: int
    events: list[OperationEvent]


class LogLine(TypedDict):
    """``invocation_logs``: a line the function logged, with its invocation."""

    invocation_seq: int
    at: datetime
    level: str
    logger: str
    message: str
    op_id: str | None
    durableExecutionArn: str
