"""The replay record of one execution, as columnar data for the dashboard's timeline.

``execution_timeline(arn, offset=, limit=)`` answers in seven queries whatever the execution's
size. Only a lean outline of every operation (id, parent, status, end) is read whole: it gives
the tree order, the window of rows to draw and the replay count. Details (attempts, body runs,
side effects, deadlines) are read for the drawn window only, and the counters are aggregated
in SQL. Attempts are derived from the history (each StepStarted … StepSucceeded/StepFailed pair
is one attempt); replays are derived from the invocations: an operation completed before
invocation k began, and reachable (not inside a completed context), was returned from
checkpoint by invocation k instead of being run.
"""

from __future__ import annotations

import itertools
import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

import psycopg
from psycopg.rows import tuple_row

from engine import db, journal
from engine.duties.end import RECORD_INCOMPLETE, journal_record
from engine.errors import ResourceNotFoundException
from engine.rows import (
    EXECUTION_ENDED,
    INVOCATION_LOST,
    OPERATION_ENDED,
    OPERATION_OPEN,
    AttemptOutcome,
    BodyRunOutcome,
    ExecutionStatus,
    InvocationOutcome,
    OperationStatus,
)
from engine.sql import Q
from engine.store import ms_to_datetime, store
from engine.timeline_types import (
    Attempt,
    AttemptRecord,
    BodyRun,
    Counters,
    Effect,
    FaultView,
    InvocationSpan,
    InvocationView,
    LogLine,
    OperationDetail,
    OperationEvent,
    PauseWindow,
    Replay,
    Segment,
    SegmentOutcome,
    Timeline,
    TimelineExecution,
    TimelineOperation,
)

log = logging.getLogger(__name__)

# An execution with thousands of invocations replays each early operation thousands of times:
# the first ones are listed, all are counted.
MAX_REPLAYS_LISTED = 100


def execution_timeline(arn: str, *, offset: int = 0, limit: int | None = None) -> Timeline:
    """Return execution, invocations, one window of operations in tree order (with attempts, body
    runs, replays, deadlines), their side effects, faults, and counters over the whole execution.

    ``limit=None`` returns every operation; ``operation_count`` is always the total.
    """
    with db.reading() as conn:
        execution = conn.execute(Q.timeline_execution, {"arn": arn}).fetchone()
        if execution is None:
            raise ResourceNotFoundException(f"Durable execution not found: {arn}")
        ex_id = execution["id"]
        invocations = conn.execute(Q.timeline_invocations, {"execution_id": ex_id}).fetchall()
        outline = _outline(conn, ex_id)
        window = tree_window(outline, offset, limit)
        details = _window_details(conn, ex_id, [op_id for op_id, _ in window])
    view = _execution_view(execution)
    listed = with_queue_time([_invocation_row(row) for row in invocations], view["started_at"])
    replays = Replays(outline, listed)
    live_runs = _add_live_body_runs(details, listed, {row.op_id for row in outline})
    operations = [
        _operation(details, op_id, depth, replays.of(op_id), view, listed)
        for op_id, depth in window
        if op_id in details.ops  # purged between the two reads
    ]
    return {
        "execution": view,
        "invocations": listed,
        "operations": operations,
        "operation_count": len(outline),
        "offset": offset,
        "effects": details.effects,
        "faults": [_fault(row) for row in execution["faults"]],
        "counters": _counters(execution, view, listed, outline, replays.total(), live_runs),
        "last_event_id": execution["last_event_id"] or 0,
        "pauses": pause_windows(execution["pauses"]),
    }


def operation_detail(arn: str, op_id: str, *, event_limit: int = 500) -> OperationDetail:
    """One operation as the timeline sees it, plus its document, children count and events.

    Reads the operation's ancestors (not the whole outline) to count its replays.
    """
    with db.reading() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise ResourceNotFoundException(f"Durable execution not found: {arn}")
        ex_id = execution["id"]
        chain = _ancestry(conn, ex_id, op_id)
        if not chain:
            raise ResourceNotFoundException(f"Operation not found: {op_id}")
        invocations: list[InvocationSpan] = conn.execute(
            Q.timeline_invocation_spans, {"execution_id": ex_id}
        ).fetchall()
        details = _window_details(conn, ex_id, [op_id])
        extra = conn.execute(Q.operation_doc_with_child_count, {"execution_id": ex_id, "op_id": op_id}).fetchone()
        events = conn.execute(
            Q.operation_events, {"execution_id": ex_id, "op_id": op_id, "limit": event_limit}
        ).fetchall()
    replays = Replays(chain, invocations).of(op_id)
    _add_live_body_runs(details, invocations, {op_id})
    operation = _operation(details, op_id, len(chain) - 1, replays, _execution_view(execution), invocations)
    return {
        "operation": operation,
        "doc": extra["doc"] if extra else {},
        "children": extra["children"] if extra else 0,
        "events": [cast(OperationEvent, dict(row)) for row in events],
    }


def _ancestry(conn: Any, execution_id: int, op_id: str) -> list[OutlineRow]:
    """The operation and its enclosing contexts, innermost first."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(
            Q.operation_ancestry,
            {"ex": execution_id, "op": op_id},
        )
        return list(map(OutlineRow._make, cursor.fetchall()))


# --- the outline: every operation, four columns -------------------------------------------


class OutlineRow(NamedTuple):
    op_id: str
    parent_id: str | None
    type: str
    status: str
    ended_at: datetime | None


def _outline(conn: Any, execution_id: int) -> list[OutlineRow]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(Q.operation_outline, {"execution_id": execution_id})
        return list(map(OutlineRow._make, cursor.fetchall()))


def tree_window(outline: list[OutlineRow], offset: int = 0, limit: int | None = None) -> list[tuple[str, int]]:
    """Rows ``offset`` to ``offset + limit`` of the tree pre-order, as (op_id, depth): children right
    under their context, siblings in start order. The walk stops at the window's end."""
    end = len(outline) if limit is None else offset + limit
    ids = {row.op_id for row in outline}
    children: dict[str | None, list[str]] = defaultdict(list)
    for row in outline:
        children[row.parent_id if row.parent_id in ids else None].append(row.op_id)
    order: list[tuple[str, int]] = []
    stack = [(op_id, 0) for op_id in reversed(children[None][:end])]
    while stack and len(order) < end:
        op_id, depth = stack.pop()
        order.append((op_id, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(op_id, ())))
    if len(order) < end and len(order) < len(outline):  # a parent cycle (never written): the rest flat
        seen = {op_id for op_id, _ in order}
        order += [(row.op_id, 0) for row in outline if row.op_id not in seen]
    return order[offset:end]


class Replays:
    """Which invocations replayed each operation: those that began after it completed and before
    an enclosing context completed (a completed context returns its result without visiting its
    children)."""

    def __init__(self, outline: list[OutlineRow], invocations: Sequence[InvocationSpan]) -> None:
        self._outline = outline
        self._starts = [(i["started_at"], i["seq"]) for i in invocations[1:]]
        self._began = [moment for moment, _ in self._starts]
        self._by_id = {row.op_id: row for row in outline}
        self._ancestor_end: dict[str, datetime | None] = {}

    def _range(self, row: OutlineRow) -> tuple[int, int]:
        if row.ended_at is None or row.status not in OPERATION_ENDED or not self._began:
            return 0, 0
        until = self._earliest_ancestor_end(row.parent_id)
        first = bisect_left(self._began, row.ended_at)
        last = bisect_left(self._began, until) if until is not None else len(self._began)
        return first, max(first, last)

    def _earliest_ancestor_end(self, parent_id: str | None) -> datetime | None:
        """The earliest end among an operation's ancestor contexts (memoised per parent)."""
        if not parent_id or parent_id not in self._by_id:
            return None
        if parent_id not in self._ancestor_end:
            self._ancestor_end[parent_id] = None  # guards against a parent cycle
            parent = self._by_id[parent_id]
            above = self._earliest_ancestor_end(parent.parent_id)
            ends = [t for t in (parent.ended_at, above) if t is not None]
            self._ancestor_end[parent_id] = min(ends, default=None)
        return self._ancestor_end[parent_id]

    def of(self, op_id: str) -> tuple[int, list[Replay]]:
        """How many invocations replayed the operation, and the first of them."""
        row = self._by_id.get(op_id)
        first, last = self._range(row) if row is not None else (0, 0)
        listed = self._starts[first : min(last, first + MAX_REPLAYS_LISTED)]
        return last - first, [{"invocation_seq": seq, "at": moment} for moment, seq in listed]

    def total(self) -> int:
        count = 0
        for row in self._outline:
            first, last = self._range(row)
            count += last - first
        return count


# --- the window: details of the drawn rows only ---------------------------------------------


@dataclass
class WindowDetails:
    """The drawn window's rows: operations and their CallbackStarted events as read, the rest as
    the read model has them."""

    ops: dict[str, dict[str, Any]]
    attempts: dict[str, list[AttemptRecord]]
    callbacks: dict[str, dict[str, Any]]
    body_runs: dict[str, list[BodyRun]]
    effects: list[Effect]


def _window_details(conn: Any, execution_id: int, op_ids: list[str]) -> WindowDetails:
    params = {"execution_id": execution_id, "op_ids": op_ids}
    ops = conn.execute(Q.window_operations, params).fetchall()
    events = conn.execute(Q.window_events, params).fetchall()
    runs = conn.execute(Q.window_body_runs, params).fetchall()
    effects = conn.execute(Q.window_effects, params).fetchall()
    body_runs: dict[str, list[BodyRun]] = defaultdict(list)
    for run in runs:
        body_runs[run["op_id"]].append(cast(BodyRun, {**run, "outcome": BodyRunOutcome(run["outcome"])}))
    return WindowDetails(
        ops={op["op_id"]: op for op in ops},
        attempts=_attempts_by_op(events),
        callbacks={e["op_id"]: e for e in events if e["event_type"] == "CallbackStarted"},
        body_runs=body_runs,
        effects=[cast(Effect, dict(row)) for row in effects],
    )


def _operation(
    details: WindowDetails,
    op_id: str,
    depth: int,
    replays: tuple[int, list[Replay]],
    execution: TimelineExecution,
    invocations: Sequence[InvocationSpan],
) -> TimelineOperation:
    op = details.ops[op_id]
    replay_count, replay_list = replays
    deadline = _deadline(op["wait_end_ms"], details.callbacks.get(op_id), execution["time_scale"])
    body_runs = [_settled_run(run, invocations) for run in details.body_runs.get(op_id, [])]
    recorded = OperationStatus(op["status"])
    status, ended_at = settled_status(recorded, op["ended_at"], execution)
    return {
        "op_id": op_id,
        "parent_id": op["parent_id"],
        "name": op["name"],
        "type": op["type"],
        "sub_type": op["sub_type"],
        "status": status,
        # What the store holds: differs from ``status`` when the execution ended around an open operation.
        "recorded_status": recorded,
        "ended_by_execution": status != recorded,
        "started_at": op["started_at"],
        "ended_at": ended_at,
        "depth": depth,
        "callback_id": op["callback_id"],
        "attempts": attempt_segments(details.attempts.get(op_id, []), body_runs, invocations, execution),
        "body_runs": body_runs,
        # A callback whose history names no timeout may still have a pending timeout timer.
        "deadline": deadline if deadline is not None else op["timer_deadline"],
        "replays": replay_list,
        "replay_count": replay_count,
    }


# --- what the record means once the execution has ended -------------------------------------

# How an operation still open ends when its execution ends this way (else it is CANCELLED).
ENDED_BY_EXECUTION = frozenset({ExecutionStatus.STOPPED, ExecutionStatus.TIMED_OUT, ExecutionStatus.FAILED})


def settled_status(
    status: OperationStatus, ended_at: datetime | None, execution: TimelineExecution
) -> tuple[OperationStatus, datetime | None]:
    """An operation still open when its execution ended was ended by it (as AWS's history ends
    it): it takes the execution's end, and its status says how (STOPPED, TIMED_OUT, FAILED;
    CANCELLED for a branch a succeeded execution no longer waited for)."""
    end = execution["ended_at"]
    if execution["status"] not in EXECUTION_ENDED or end is None or status not in OPERATION_OPEN:
        return status, ended_at
    by = execution["status"]
    return (OperationStatus(by) if by in ENDED_BY_EXECUTION else OperationStatus.CANCELLED), end


def attempt_segments(
    attempts: Sequence[AttemptRecord],
    body_runs: Sequence[BodyRun],
    invocations: Sequence[InvocationSpan],
    execution: TimelineExecution,
) -> list[Attempt]:
    """Tie each attempt to the invocations that ran it.

    An at-least-once step whose invocation dies mid-body keeps its StepStarted: the next
    invocation runs the same attempt again without a new start event, and the closing event
    comes from that later invocation. So one attempt can span invocations; each invocation's
    share is a segment, ending where that invocation ended. ``invocation_seq`` is where the
    attempt began; an attempt still open when the execution ended ends with it. The attempts
    given are left as they are: each comes back as a new ``Attempt``.
    """
    by_seq = {i["seq"]: i for i in invocations}
    return [_segmented(attempt, _segments(attempt, body_runs, by_seq, execution), execution) for attempt in attempts]


def _segmented(attempt: AttemptRecord, segments: list[Segment], execution: TimelineExecution) -> Attempt:
    ended_at, outcome = attempt["ended_at"], attempt["outcome"]
    if ended_at is None and execution["status"] in EXECUTION_ENDED and execution["ended_at"] is not None:
        ended_at = segments[-1]["ended_at"] if segments else execution["ended_at"]
        outcome = AttemptOutcome.UNFINISHED
    return {
        **attempt,
        "invocation_seq": segments[0]["invocation_seq"] if segments else attempt["invocation_seq"],
        "started_at": segments[0]["started_at"] if segments else attempt["started_at"],
        "ended_at": ended_at,
        "outcome": outcome,
        "segments": segments,
        "invocations": [segment["invocation_seq"] for segment in segments],
    }


def _segments(
    attempt: AttemptRecord,
    body_runs: Sequence[BodyRun],
    by_seq: dict[int, InvocationSpan],
    execution: TimelineExecution,
) -> list[Segment]:
    start_seq, close_seq = attempt["start_seq"], attempt["close_seq"]
    runs = [r for r in body_runs if r.get("attempt") in (None, attempt["attempt"])]
    seqs = {start_seq} if start_seq is not None else set()
    # A body run before the StepStarted's invocation is this attempt too: an at-least-once START is
    # sent without waiting, and a kill right after the body can lose it with the process.
    seqs |= {r["invocation_seq"] for r in runs if close_seq is None or r["invocation_seq"] <= close_seq}
    if close_seq is not None:
        seqs.add(close_seq)
    segments: list[Segment] = []
    for seq in sorted(seqs):
        invocation = by_seq.get(seq)
        own_runs = [r["started_at"] for r in runs if r["invocation_seq"] == seq]
        if seq == start_seq:
            # The START checkpoint of an at-least-once step is sent without waiting: the body may begin first.
            began = min([attempt["started_at"], *[t for t in own_runs if t <= attempt["started_at"]]])
        else:
            invocation_began = invocation["started_at"] if invocation else None
            began = min(own_runs, default=attempt["ended_at"] or invocation_began or attempt["started_at"])
        ended: datetime | None
        outcome: SegmentOutcome
        if seq == close_seq:
            ended, outcome = attempt["ended_at"], attempt["outcome"]
        else:
            ended, outcome = _cut_end(invocation, execution)
        segments.append({"invocation_seq": seq, "started_at": began, "ended_at": ended, "outcome": outcome})
    return segments


def _cut_end(invocation: InvocationSpan | None, execution: TimelineExecution) -> tuple[datetime | None, SegmentOutcome]:
    """Where an attempt's share of an invocation ended when no event closed it there."""
    ended, end = (invocation["ended_at"] if invocation else None), execution["ended_at"]
    if execution["status"] in EXECUTION_ENDED and end is not None:
        return min(
            t for t in (ended, end) if t is not None
        ), AttemptOutcome.UNFINISHED if ended is None or end <= ended else "cut_short"
    if ended is not None:
        return ended, "cut_short"
    return None, AttemptOutcome.RUNNING


def _settled_run(run: BodyRun, invocations: Sequence[InvocationSpan]) -> BodyRun:
    """A body cut short has no end of its own: it ended with its invocation."""
    if run["ended_at"] is not None:
        return run
    ended = next((i["ended_at"] for i in invocations if i["seq"] == run["invocation_seq"]), None)
    return {**run, "ended_at": ended, "cut_short": True} if ended is not None else run


def _add_live_body_runs(details: WindowDetails, invocations: Sequence[InvocationSpan], known: set[str]) -> int:
    """Body runs of invocations still running: the engine ingests their journal only when they
    end, so read it (read-only; shipped chunks if it runs on another host) to show what already
    ran. Returns how many belong to ``known``
    operations (a body can start before its operation's START checkpoint is stored)."""
    count = 0
    for invocation in invocations:
        if invocation["ended_at"] is not None or not invocation["request_id"]:
            continue
        try:
            record = journal_record(journal.live_entries(invocation["request_id"]))
        except (
            KeyError,
            TypeError,
            ValueError,
            psycopg.Error,
        ):  # a journal being written, or a bad one: the page shows what it can
            log.warning("journal of invocation %s unreadable; its live body runs are not shown", invocation["seq"])
            continue
        for run in record.body_runs:
            count += run["op_id"] in known
            if run["op_id"] not in details.ops:
                continue
            details.body_runs[run["op_id"]].append(
                cast(
                    BodyRun,
                    {
                        **run,
                        "invocation_seq": invocation["seq"],
                        "started_at": datetime.fromisoformat(run["started_at"]),
                        "ended_at": datetime.fromisoformat(run["ended_at"]) if run["ended_at"] else None,
                        "outcome": BodyRunOutcome(run["outcome"]) if run["ended_at"] else "running",
                        "live": True,
                    },
                )
            )
    return count


def _fault(row: Mapping[str, Any]) -> FaultView:
    """A fault row that came back through json_agg: its timestamps are ISO strings."""
    fault = dict(row)
    for key in ("armed_at", "fired_at"):
        if fault.get(key):
            fault[key] = datetime.fromisoformat(fault[key])
    return cast(FaultView, fault)


def _attempts_by_op(events: list[dict[str, Any]]) -> dict[str, list[AttemptRecord]]:
    """Pair StepStarted with the StepSucceeded/StepFailed that closes it: one attempt each."""
    result: dict[str, list[AttemptRecord]] = defaultdict(list)
    open_start: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, op_id = event["event_type"], event["op_id"]
        if kind == "StepStarted":
            open_start[op_id] = event
        elif kind in {"StepSucceeded", "StepFailed"}:
            start = open_start.pop(op_id, None)
            retry = event["retry"] or {}
            result[op_id].append(
                {
                    "attempt": retry.get("CurrentAttempt", len(result[op_id]) + 1),
                    "invocation_seq": start["invocation_seq"] if start else event["invocation_seq"],
                    "start_seq": start["invocation_seq"] if start else event["invocation_seq"],
                    "close_seq": event["invocation_seq"],
                    "started_at": start["timestamp"] if start else event["timestamp"],
                    "ended_at": event["timestamp"],
                    "outcome": AttemptOutcome.SUCCEEDED if kind == "StepSucceeded" else _failed_outcome(event["error"]),
                    "error": event["error"],
                    "next_attempt_delay": retry.get("NextAttemptDelaySeconds"),
                    "retrying": "NextAttemptDelaySeconds" in retry,
                }
            )
    for op_id, start in open_start.items():
        result[op_id].append(
            {
                "attempt": len(result[op_id]) + 1,
                "invocation_seq": start["invocation_seq"],
                "start_seq": start["invocation_seq"],
                "close_seq": None,
                "started_at": start["timestamp"],
                "ended_at": None,
                "outcome": AttemptOutcome.RUNNING,
                "error": None,
                "next_attempt_delay": None,
                "retrying": False,
            }
        )
    return result


def _failed_outcome(error: dict[str, Any] | None) -> AttemptOutcome:
    error_type: str = (error or {}).get("ErrorType", "")
    return AttemptOutcome.INTERRUPTED if error_type.endswith("StepInterruptedError") else AttemptOutcome.FAILED


def _deadline(wait_end_ms: int | None, callback_started: dict[str, Any] | None, time_scale: float) -> datetime | None:
    """A wait's scheduled end, or a callback's timeout deadline (on the execution's clock)."""
    if wait_end_ms:
        return ms_to_datetime(wait_end_ms)
    if callback_started is not None:
        timeout = callback_started["callback_timeout"]
        if timeout:
            started_at: datetime = callback_started["timestamp"]
            return started_at + timedelta(seconds=timeout * time_scale)
    return None


# --- the execution and its counters ---------------------------------------------------------


def _execution_view(execution: Mapping[str, Any]) -> TimelineExecution:
    """The execution as the timeline shows it, from its row (any query selecting its columns)."""
    pause_state = execution["pause_state"]
    return {
        "arn": execution["arn"],
        "name": execution["name"],
        "function_name": execution["function_name"],
        "status": ExecutionStatus(execution["status"]),
        "pause_state": ExecutionStatus(pause_state) if pause_state is not None else None,
        "input": execution["input"],
        "result": execution["result"],
        "error": execution["error"],
        "started_at": execution["started_at"],
        "ended_at": execution["ended_at"],
        "execution_timeout": execution["execution_timeout"],
        "time_scale": execution["time_scale"],
        "invocation_type": execution["invocation_type"],
        "parent_arn": execution["parent_arn"],
        "counters": execution["counters"],
        "queued_since": _queued_since(execution),
    }


def _invocation_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An invocation row with its outcome as an ``InvocationOutcome`` (None while it runs), and
    why its record is incomplete if it is (its host was lost: only what was shipped was kept)."""
    outcome = row["outcome"]
    return {
        **row,
        "outcome": InvocationOutcome(outcome) if outcome is not None else None,
        "record_incomplete": (row["error"] or {}).get(RECORD_INCOMPLETE),
    }


# From the invoke message being sent to a worker taking it up normally takes a few tens of
# milliseconds (broker round trip, prefork hand-off; the file broker polls every 100 ms). A wait
# longer than this is the invocation queued behind busy workers, and is drawn as such.
QUEUED_AFTER = timedelta(milliseconds=250)


def with_queue_time(invocations: Sequence[Mapping[str, Any]], execution_started_at: datetime) -> list[InvocationView]:
    """Each invocation row as an ``InvocationView``, with ``queued_at``: when it began to wait for
    a worker (its message was sent, no earlier than the previous invocation's end), or None if it
    did not wait noticeably. The wait is neither billed (no function ran) nor a suspension (it
    was owed)."""
    result: list[InvocationView] = []
    previous_end = execution_started_at
    for row in invocations:
        sent: datetime | None = row.get("dispatched_at")
        waited_from = max(sent, previous_end) if sent is not None else None
        queued = waited_from is not None and row["started_at"] - waited_from > QUEUED_AFTER
        result.append(cast(InvocationView, {**row, "queued_at": waited_from if queued else None}))
        previous_end = row["ended_at"] or row["started_at"]
    return result


def pause_windows(events: list[dict[str, Any]]) -> list[PauseWindow]:
    """The execution's pauses from its ExecutionPaused / ExecutionResumed events, in order:
    ``{"paused_at", "resumed_at"}``, the last one's ``resumed_at`` None while it lasts (or if a
    stop or another end closed it)."""
    windows: list[PauseWindow] = []
    for event in events:
        at = datetime.fromisoformat(event["at"])
        if event["type"] == "ExecutionPaused":
            windows.append({"paused_at": at, "resumed_at": None})
        elif windows and windows[-1]["resumed_at"] is None:
            windows[-1]["resumed_at"] = at
    return windows


def _queued_since(execution: Mapping[str, Any]) -> datetime | None:
    """When the invocation owed now was sent to the workers, while none has taken it up yet (a
    paused execution's owed invocation is not sent until it is resumed)."""
    if execution["status"] != ExecutionStatus.RUNNING or execution["running"] or not execution["needs_invoke"]:
        return None
    if execution["pause_state"] is not None:
        return None
    dispatched_at: datetime | None = execution["dispatched_at"]
    return dispatched_at


def queued_seconds(invocation: InvocationView) -> float:
    queued_at = invocation.get("queued_at")
    return (invocation["started_at"] - queued_at).total_seconds() if queued_at is not None else 0.0


# After an invocation ended this way the engine re-invokes the function (at once or after a
# backoff): the time until the next one is recovery from a crash, not a suspension.
REINVOKED_AFTER = INVOCATION_LOST | {InvocationOutcome.FAILED}


def gap_kind(previous: InvocationView) -> str:
    """What the time between ``previous`` invocation's end and the next one's start was:
    ``"reinvoke"`` after a crash, kill, timeout or failure, else ``"suspended"``."""
    return "reinvoke" if previous["outcome"] in REINVOKED_AFTER else "suspended"


def _reinvoke_seconds(invocations: Sequence[InvocationView]) -> float:
    """Time between a crashed invocation and the next one's message (its queue time apart)."""
    seconds: float = sum(
        max(0.0, (later["started_at"] - earlier["ended_at"]).total_seconds() - queued_seconds(later))
        for earlier, later in itertools.pairwise(invocations)
        if earlier["ended_at"] is not None and gap_kind(earlier) == "reinvoke"
    )
    return seconds


def wall_end(execution: TimelineExecution, invocations: Sequence[InvocationSpan]) -> datetime:
    """Where wall time ends: when the execution ended, or later if its last invocation ran on
    (a Stop or a timeout ends the execution at once; the invocation running then is cut short
    after, and is billed until then). Wall time so covers billed time."""
    ends: list[datetime] = [i["ended_at"] or i["started_at"] for i in invocations]
    if execution["ended_at"] is not None:
        ends.append(execution["ended_at"])
    return max(ends or [execution["started_at"]])


def _counters(
    execution: Mapping[str, Any],
    view: TimelineExecution,
    invocations: Sequence[InvocationView],
    outline: list[OutlineRow],
    replays: int,
    live_runs: int = 0,
) -> Counters:
    """Counted over the whole execution: ``execution`` is its Q.timeline_execution row (with the
    history's and the journal tables' counts), ``view`` the same execution as shown."""
    billed = sum(((i["ended_at"] or i["started_at"]) - i["started_at"]).total_seconds() for i in invocations)
    wall = (wall_end(view, invocations) - view["started_at"]).total_seconds()
    reinvoke = _reinvoke_seconds(invocations)
    queued = sum(queued_seconds(i) for i in invocations)
    return {
        "invocations": len(invocations),
        # An attempt is closed by StepSucceeded/StepFailed, or still open: only a START leaves a
        # step STARTED, so a STARTED step's last step event is its StepStarted.
        "attempts": execution["closed_attempts"]
        + sum(1 for r in outline if r.type == "STEP" and r.status == "STARTED"),
        "failed_attempts": execution["failed_attempts"],
        "replays": replays,
        "body_runs": execution["body_run_count"] + live_runs,
        "checkpoints": (execution.get("counters") or {}).get("checkpoints", 0),
        "effects": execution["effect_count"],
        "duplicate_effects": execution["duplicate_count"],
        "billed_seconds": round(billed, 3),
        "wall_seconds": round(wall, 3),
        "suspended_seconds": round(max(0.0, wall - billed - reinvoke - queued), 3),
        "reinvoke_seconds": round(reinvoke, 3),
        "queued_seconds": round(queued, 3),
    }


def invocation_logs(arn: str, limit: int = 5000) -> list[LogLine]:
    """Return the execution's log lines (SDK logger and handler output), oldest first, each with its invocation."""
    with db.reading() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise ResourceNotFoundException(f"Durable execution not found: {arn}")
        rows = conn.execute(Q.invocation_logs, {"execution_id": execution["id"], "limit": limit}).fetchall()
    return [cast(LogLine, {**row, "durableExecutionArn": arn}) for row in rows]
