"""What must hold of an execution's read model for its pages to tell the truth.

``violations(data)`` takes what ``engine.timeline.execution_timeline`` returns and lists each
broken rule as a plain sentence, prefixed with the rule's code (``open-after-end: …``). The
tests run it after every demo, comparison and fault; the execution page shows what it finds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

from engine.rows import EXECUTION_ENDED, INVOCATION_LOST, OPERATION_OPEN
from engine.timeline import gap_kind, queued_seconds
from engine.timeline_types import Attempt, InvocationView, Segment, Timeline, TimelineOperation

# Invocations, events and body runs are stamped by different processes (engine, worker) on one
# machine: a few milliseconds of disagreement are clock reads, not lies.
SLACK = timedelta(milliseconds=50)
# The timeline draws every gap between invocations as "suspended"; after a crash (kill, timeout)
# nothing suspended the execution: the gap is the engine noticing the death and its re-invoke
# backoff. Until the timeline draws that gap as what it is (issue #22 point 2), a visible one is
# a violation; a gap under this is a hairline nobody reads.
CRASH_GAP = timedelta(milliseconds=200)

RULES = (
    "open-after-end",
    "attempt-outside-invocation",
    "orphan-body-run",
    "billed-mismatch",
    "count-mismatch",
    "crash-as-suspended",
    "queue-time",
    "invoked-while-paused",
)


def violations(data: Timeline) -> list[str]:
    """Return every broken rule of the read model, as ``"<code>: <what is wrong>"`` sentences."""
    return [
        *_open_after_end(data),
        *_attempts_outside_invocations(data),
        *_orphan_body_runs(data),
        *_billed_mismatch(data),
        *_count_mismatches(data),
        *_crash_as_suspended(data),
        *_queue_time(data),
        *_invoked_while_paused(data),
    ]


def _label(op: TimelineOperation) -> str:
    return f"{op.get('name') or op['type'].lower()} ({op['op_id'][:8]})"


def _open_after_end(data: Timeline) -> Iterator[str]:
    execution = data["execution"]
    if execution["status"] not in EXECUTION_ENDED:
        return
    for op in data["operations"]:
        if op["status"] in OPERATION_OPEN or op["ended_at"] is None:
            yield f"open-after-end: {_label(op)} is {op['status']} with no end on a {execution['status']} execution"
        for attempt in op["attempts"]:
            if attempt["ended_at"] is None or attempt["outcome"] == "running":
                yield f"open-after-end: {_label(op)} attempt {attempt['attempt']} still running on a {execution['status']} execution"


def _inside(start: datetime, end: datetime | None, invocation: InvocationView) -> bool:
    if start < invocation["started_at"] - SLACK:
        return False
    ended: datetime | None = invocation["ended_at"]
    if end is None or ended is None:
        return end is None or end >= start
    return end <= ended + SLACK


def _where_it_ran(attempt: Attempt) -> Sequence[Segment | Attempt]:
    """An attempt's segments; an attempt tied to no invocation stands for its own."""
    return attempt.get("segments") or [attempt]


def _attempts_outside_invocations(data: Timeline) -> Iterator[str]:
    by_seq: dict[int | None, InvocationView] = {i["seq"]: i for i in data["invocations"]}
    for op in data["operations"]:
        for attempt in op["attempts"]:
            for segment in _where_it_ran(attempt):
                invocation = by_seq.get(segment["invocation_seq"])
                if invocation is None or not _inside(segment["started_at"], segment["ended_at"], invocation):
                    yield (
                        f"attempt-outside-invocation: {_label(op)} attempt {attempt['attempt']} "
                        f"({segment['started_at']:%H:%M:%S.%f} to "
                        f"{segment['ended_at'] and format(segment['ended_at'], '%H:%M:%S.%f')}) "
                        f"is not inside invocation #{segment['invocation_seq']}"
                    )


def _orphan_body_runs(data: Timeline) -> Iterator[str]:
    by_seq = {i["seq"]: i for i in data["invocations"]}
    for op in data["operations"]:
        ran_in = {
            (attempt["attempt"], segment["invocation_seq"])
            for attempt in op["attempts"]
            for segment in _where_it_ran(attempt)
        }
        for run in op.get("body_runs") or []:
            if run.get("live"):
                continue  # still running: its attempt's START may not be stored yet
            invocation = by_seq.get(run["invocation_seq"])
            if invocation is None:
                yield f"orphan-body-run: {_label(op)} ran in invocation #{run['invocation_seq']}, which is not recorded"
            elif (run["attempt"], run["invocation_seq"]) not in ran_in:
                yield (
                    f"orphan-body-run: {_label(op)}'s body ran in invocation #{run['invocation_seq']} "
                    f"as attempt {run['attempt']}, but no attempt {run['attempt']} is drawn there"
                )


def _billed_mismatch(data: Timeline) -> Iterator[str]:
    invocations = data["invocations"]
    if any(i["ended_at"] is None for i in invocations):
        return  # a running invocation's share grows with the clock
    billed = sum((i["ended_at"] - i["started_at"]).total_seconds() for i in invocations if i["ended_at"] is not None)
    shown = data["counters"]["billed_seconds"]
    if abs(billed - shown) > 0.002:
        yield f"billed-mismatch: the header bills {shown:.3f} s, the invocations add up to {billed:.3f} s"
    wall = data["counters"].get("wall_seconds")
    if wall is not None and shown > wall + 0.002:
        yield f"billed-mismatch: the header bills {shown:.3f} s, more than its wall time of {wall:.3f} s"


def _count_mismatches(data: Timeline) -> Iterator[str]:
    counters, operations = data["counters"], data["operations"]
    if counters["invocations"] != len(data["invocations"]):
        yield f"count-mismatch: the header counts {counters['invocations']} invocations, the table lists {len(data['invocations'])}"
    if data.get("operation_count", len(operations)) != len(operations) or data.get("offset", 0):
        return  # one window of a long execution: the tables hold only part of what the header counts
    shown: dict[Literal["attempts", "body_runs", "replays"], int] = {
        "attempts": sum(len(op["attempts"]) for op in operations),
        "body_runs": sum(len(op.get("body_runs") or []) for op in operations),
        "replays": sum(op.get("replay_count", 0) for op in operations),
    }
    for key, total in shown.items():
        if counters[key] != total:
            yield f"count-mismatch: the header counts {counters[key]} {key.replace('_', ' ')}, the operations table {total}"


def _crash_as_suspended(data: Timeline) -> Iterator[str]:
    """After a crash, kill or timeout the engine re-invokes: that gap is neither drawn nor
    counted as a suspension (the chart draws gaps by ``gap_kind``; the header counts them in
    ``reinvoke_seconds``)."""
    crash_gaps = 0.0
    for before, after in pairwise(data["invocations"]):
        if before["outcome"] not in INVOCATION_LOST or before["ended_at"] is None:
            continue
        gap = after["started_at"] - before["ended_at"]
        if gap <= CRASH_GAP:
            continue
        # Time the next invocation waited for a worker is queue time, counted apart.
        crash_gaps += gap.total_seconds() - queued_seconds(after)
        if gap_kind(before) == "suspended":
            yield (
                f"crash-as-suspended: invocation #{before['seq']} ended {before['outcome']}, and the "
                f"{gap.total_seconds():.1f} s before #{after['seq']} is drawn as suspended"
            )
    counted = data["counters"].get("reinvoke_seconds", 0.0)
    if crash_gaps - counted > CRASH_GAP.total_seconds():
        yield (
            f"crash-as-suspended: {crash_gaps:.1f} s between a crashed invocation and the next, but the "
            f"header counts only {counted:.1f} s as re-invoking: the rest is counted as suspended"
        )


def _queue_time(data: Timeline) -> Iterator[str]:
    """Time an invocation waited for a worker lies between the previous invocation's end (or the
    execution's start) and its own start, and the header counts exactly that, apart from both
    billed and suspended time."""
    previous_end, total = data["execution"].get("started_at"), 0.0
    for invocation in data["invocations"]:
        queued_at = invocation.get("queued_at")
        if queued_at is not None:
            outside = previous_end is not None and queued_at < previous_end - SLACK
            if outside or queued_at > invocation["started_at"]:
                yield (
                    f"queue-time: invocation #{invocation['seq']} is drawn queued from {queued_at:%H:%M:%S.%f}, "
                    f"outside the gap before it ({previous_end:%H:%M:%S.%f} to {invocation['started_at']:%H:%M:%S.%f})"
                )
            total += queued_seconds(invocation)
        previous_end = invocation["ended_at"] or invocation["started_at"]
    counted = data["counters"].get("queued_seconds", 0.0)
    if abs(total - counted) > 0.002:
        yield f"queue-time: the invocations waited {total:.3f} s for a worker, the header counts {counted:.3f} s"


def _invoked_while_paused(data: Timeline) -> Iterator[str]:
    """No invocation starts while the execution is paused: between an ExecutionPaused and the
    next ExecutionResumed (or the end, for a pause a stop closed)."""
    end = data["execution"].get("ended_at")
    for window in data.get("pauses", []):
        paused_at, resumed_at = window["paused_at"], window["resumed_at"] or end
        for invocation in data["invocations"]:
            started = invocation["started_at"]
            if paused_at + SLACK < started and (resumed_at is None or started < resumed_at - SLACK):
                yield (
                    f"invoked-while-paused: invocation #{invocation['seq']} started at {started:%H:%M:%S.%f}, "
                    f"while the execution was paused (from {paused_at:%H:%M:%S.%f})"
                )
