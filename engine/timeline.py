"""The replay record of one execution, as columnar data for the dashboard's timeline.

``execution_timeline(arn)`` answers in a fixed number of queries whatever the execution's
size: one per table, no per-operation queries. Attempts are derived from the history (each
StepStarted … StepSucceeded/StepFailed pair is one attempt); replays are derived from the
invocations: an operation completed before invocation k began, and reachable (not inside a
completed context), was returned from checkpoint by invocation k instead of being run.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from engine import db, store
from engine.errors import ResourceNotFoundException

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"}


def execution_timeline(arn: str) -> dict[str, Any]:
    """Return execution, invocations, operations (with attempts, body runs, replays), effects, faults, counters."""
    with db.transaction() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise ResourceNotFoundException(f"Durable execution not found: {arn}")
        ex_id = execution["id"]
        invocations = conn.execute(
            """SELECT seq, request_id, reason, started_at, ended_at, deadline, outcome, error, worker, pid
               FROM durable_invocation WHERE execution_id = %s ORDER BY seq""",
            (ex_id,),
        ).fetchall()
        # Only the few document fields the timeline needs are extracted in SQL: parsing every
        # operation and event document is what made a 10,000-operation timeline slow.
        ops = conn.execute(
            """SELECT op_id, parent_id, name, type, sub_type, status, attempt, started_at, ended_at, callback_id,
                   (doc->'WaitDetails'->>'ScheduledEndTimestamp')::bigint AS wait_end_ms
               FROM durable_operation WHERE execution_id = %s AND type <> 'EXECUTION' ORDER BY ordinal""",
            (ex_id,),
        ).fetchall()
        events = conn.execute(
            """SELECT event_id, event_type, timestamp, op_id, invocation_seq,
                   COALESCE(doc->'StepSucceededDetails'->'RetryDetails', doc->'StepFailedDetails'->'RetryDetails')
                       AS retry,
                   doc->'StepFailedDetails'->'Error'->'Payload' AS error,
                   (doc->'CallbackStartedDetails'->>'Timeout')::int AS callback_timeout
               FROM durable_event
               WHERE execution_id = %s AND event_type IN ('StepStarted', 'StepSucceeded', 'StepFailed', 'CallbackStarted')
               ORDER BY event_id""",
            (ex_id,),
        ).fetchall()
        body_runs = _optional(conn, "durable_body_run", ex_id, "started_at")
        effects = _optional(conn, "durable_effect", ex_id, "at")
        faults = _optional(conn, "durable_fault", ex_id, "armed_at")
    operations = _operations(ops, events, invocations, body_runs, execution["time_scale"])
    return {
        "execution": _execution_view(execution),
        "invocations": [dict(row) for row in invocations],
        "operations": operations,
        "effects": effects,
        "faults": faults,
        "counters": _counters(execution, invocations, operations, effects),
    }


def _optional(conn: Any, table: str, execution_id: int, order: str) -> list[dict[str, Any]]:
    """Rows of a replay-record table (empty while that table does not exist yet)."""
    exists = conn.execute("SELECT to_regclass(%s) AS t", (table,)).fetchone()
    if not exists or exists["t"] is None:
        return []
    rows = conn.execute(f"SELECT * FROM {table} WHERE execution_id = %s ORDER BY {order}", (execution_id,)).fetchall()
    return [dict(row) for row in rows]


def _execution_view(execution: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "arn",
        "name",
        "function_name",
        "status",
        "input",
        "result",
        "error",
        "started_at",
        "ended_at",
        "execution_timeout",
        "time_scale",
        "invocation_type",
        "parent_arn",
        "counters",
    )
    return {key: execution[key] for key in keys}


def _operations(
    ops: list[dict[str, Any]],
    events: list[dict[str, Any]],
    invocations: list[dict[str, Any]],
    body_runs: list[dict[str, Any]],
    time_scale: float,
) -> list[dict[str, Any]]:
    attempts = _attempts_by_op(events)
    runs_by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in body_runs:
        runs_by_op[run["op_id"]].append(run)
    depth = _depths(ops)
    callbacks = {e["op_id"]: e for e in events if e["event_type"] == "CallbackStarted"}
    result = []
    for op in ops:
        result.append(
            {
                "op_id": op["op_id"],
                "parent_id": op["parent_id"],
                "name": op["name"],
                "type": op["type"],
                "sub_type": op["sub_type"],
                "status": op["status"],
                "started_at": op["started_at"],
                "ended_at": op["ended_at"],
                "depth": depth[op["op_id"]],
                "callback_id": op["callback_id"],
                "attempts": attempts.get(op["op_id"], []),
                "body_runs": runs_by_op.get(op["op_id"], []),
                "deadline": _deadline(op["wait_end_ms"], callbacks.get(op["op_id"]), time_scale),
                "replays": [],
            }
        )
    _mark_replays(result, invocations)
    return result


def _attempts_by_op(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pair StepStarted with the StepSucceeded/StepFailed that closes it: one attempt each."""
    result: dict[str, list[dict[str, Any]]] = defaultdict(list)
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
                    "invocation_seq": event["invocation_seq"],
                    "started_at": start["timestamp"] if start else event["timestamp"],
                    "ended_at": event["timestamp"],
                    "outcome": "succeeded" if kind == "StepSucceeded" else _failed_outcome(event["error"]),
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
                "started_at": start["timestamp"],
                "ended_at": None,
                "outcome": "running",
                "error": None,
                "next_attempt_delay": None,
                "retrying": False,
            }
        )
    return result


def _failed_outcome(error: dict[str, Any] | None) -> str:
    error_type = (error or {}).get("ErrorType", "")
    return "interrupted" if error_type.endswith("StepInterruptedError") else "failed"


def _deadline(wait_end_ms: int | None, callback_started: dict[str, Any] | None, time_scale: float) -> datetime | None:
    """A wait's scheduled end, or a callback's timeout deadline (on the execution's clock)."""
    if wait_end_ms:
        return store.ms_to_datetime(wait_end_ms)
    if callback_started is not None:
        timeout = callback_started["callback_timeout"]
        if timeout:
            return callback_started["timestamp"] + timedelta(seconds=timeout * time_scale)
    return None


def _depths(ops: list[dict[str, Any]]) -> dict[str, int]:
    parents = {op["op_id"]: op["parent_id"] for op in ops}
    depth: dict[str, int] = {}
    for op_id in parents:
        level, parent = 0, parents[op_id]
        while parent in parents and level < 50:
            level, parent = level + 1, parents[parent]
        depth[op_id] = level
    return depth


def _mark_replays(operations: list[dict[str, Any]], invocations: list[dict[str, Any]]) -> None:
    """Invocation k replays every operation that had completed when k began, unless an enclosing
    context had completed too (its result is returned without visiting the children)."""
    starts = [(i["started_at"], i["seq"]) for i in invocations[1:]]
    began = [moment for moment, _ in starts]
    by_id = {op["op_id"]: op for op in operations}
    closed_ancestor: dict[str, datetime | None] = {}
    for op in operations:
        if op["ended_at"] is None or op["status"] not in TERMINAL:
            continue
        until = _earliest_ancestor_end(op["parent_id"], by_id, closed_ancestor)
        first = bisect_left(began, op["ended_at"])
        last = bisect_left(began, until) if until is not None else len(began)
        op["replays"] = [{"invocation_seq": seq, "at": moment} for moment, seq in starts[first:last]]


def _earliest_ancestor_end(
    parent_id: str | None, by_id: dict[str, dict[str, Any]], memo: dict[str, datetime | None]
) -> datetime | None:
    """The earliest end time among an operation's ancestor contexts (memoised per parent)."""
    if not parent_id or parent_id not in by_id:
        return None
    if parent_id not in memo:
        parent = by_id[parent_id]
        above = _earliest_ancestor_end(parent["parent_id"], by_id, memo)
        own = parent["ended_at"]
        memo[parent_id] = min((t for t in (own, above) if t is not None), default=None)
    return memo[parent_id]


def _counters(
    execution: dict[str, Any],
    invocations: list[dict[str, Any]],
    operations: list[dict[str, Any]],
    effects: list[dict[str, Any]],
) -> dict[str, Any]:
    attempts = [a for op in operations for a in op["attempts"]]
    billed = sum(((i["ended_at"] or i["started_at"]) - i["started_at"]).total_seconds() for i in invocations)
    end = execution["ended_at"] or max(
        [i["ended_at"] or i["started_at"] for i in invocations] or [execution["started_at"]]
    )
    wall = (end - execution["started_at"]).total_seconds()
    return {
        "invocations": len(invocations),
        "attempts": len(attempts),
        "failed_attempts": sum(1 for a in attempts if a["outcome"] in {"failed", "interrupted"}),
        "replays": sum(len(op["replays"]) for op in operations),
        "body_runs": sum(len(op["body_runs"]) for op in operations),
        "checkpoints": (execution.get("counters") or {}).get("checkpoints", 0),
        "effects": len(effects),
        "duplicate_effects": sum(1 for e in effects if e.get("duplicate")),
        "billed_seconds": round(billed, 3),
        "wall_seconds": round(wall, 3),
        "suspended_seconds": round(max(0.0, wall - billed), 3),
    }


def invocation_logs(arn: str, limit: int = 5000) -> list[dict[str, Any]]:
    """Return the execution's log lines (SDK logger and handler output), oldest first, each with its invocation."""
    with db.transaction() as conn:
        execution = store.execution_by_arn(conn, arn)
        if execution is None:
            raise ResourceNotFoundException(f"Durable execution not found: {arn}")
        rows = conn.execute(
            """SELECT invocation_seq, at, level, logger, message, op_id FROM durable_log
               WHERE execution_id = %s ORDER BY at, id LIMIT %s""",
            (execution["id"], limit),
        ).fetchall()
    return [{**row, "durableExecutionArn": arn} for row in rows]
