"""The PostgreSQL store: the engine tables, read and written through the named queries of ``engine/sql/``. Every
function runs inside the caller's transaction (``conn``); Python here only shapes parameters and
rows, and the statements themselves, with the reasons for their shapes, are in the ``.sql`` files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from engine.db import Conn
from engine.machine import PENDING_STATUSES
from engine.rows import DueTimer, Execution, ExecutionRow, Invocation, OperationDoc, execution_row
from engine.sql import Q
from engine.store.records import (
    GUARDED_COLUMNS,
    SCHEDULER_LOOKS_EVERY,
    Sequences,
    numbered,
    op_record,
)

# --- functions --------------------------------------------------------------------------------


def get_function(conn: Conn, name: str) -> dict[str, Any] | None:
    return conn.execute(Q.get_function, {"name": name}).fetchone()


def list_functions(conn: Conn, *, after: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(Q.list_functions, {"after": after, "limit": limit}).fetchall()


def upsert_function(conn: Conn, fn: Mapping[str, Any]) -> dict[str, Any]:
    row = conn.execute(
        Q.upsert_function,
        {
            **fn,
            "durable_config": Jsonb(fn["durable_config"]) if fn["durable_config"] is not None else None,
            "environment": Jsonb(fn["environment"]),
            "invocation_retry": Jsonb(fn["invocation_retry"]),
        },
    ).fetchone()
    assert row is not None
    return row


def store_code(conn: Conn, sha256: str, zip_bytes: bytes, now: Any) -> None:
    conn.execute(Q.store_code, {"sha256": sha256, "zip": zip_bytes, "size": len(zip_bytes), "now": now})


def get_code(conn: Conn, sha256: str) -> bytes | None:
    row = conn.execute(Q.get_code, {"sha256": sha256}).fetchone()
    return None if row is None else bytes(row["zip"])


# --- executions -------------------------------------------------------------------------------


def insert_started_execution(
    conn: Conn, values: Mapping[str, Any], op: dict[str, Any], event: dict[str, Any], timeout_at: datetime
) -> ExecutionRow | None:
    """Start an execution in one statement: its row (already asking to be invoked), its EXECUTION
    operation, ``ExecutionStarted`` and its execution-timeout timer. Return None, and write
    nothing, if the (function, name) pair is already taken.

    One statement is one round trip and, on an autocommit connection, one transaction: a start
    costs what the bare INSERT + COMMIT it must pay anyway costs, plus the JSON.
    """
    record = op_record(1, op)
    row = conn.execute(
        Q.insert_started_execution,
        {
            **values,
            "horizon": SCHEDULER_LOOKS_EVERY,
            "op_id": record["op_id"],
            "op_status": record["status"],
            "op_started_at": record["started_at"],
            "op_doc": Jsonb(op),
            "event_type": event["EventType"],
            "event_doc": Jsonb(event),
            "timeout_at": timeout_at,
        },
    ).fetchone()
    return None if row is None else execution_row(row)


def execution_by_name(conn: Conn, function_name: str, name: str) -> ExecutionRow | None:
    row = conn.execute(Q.execution_by_name, {"function_name": function_name, "name": name}).fetchone()
    return None if row is None else execution_row(row)


def execution_by_arn(conn: Conn, arn: str, *, lock: bool = False) -> ExecutionRow | None:
    query = Q.execution_by_arn_for_update if lock else Q.execution_by_arn
    row = conn.execute(query, {"arn": arn}).fetchone()
    return None if row is None else execution_row(row)


def execution_at(conn: Conn, arn: str) -> Execution | None:
    """The execution as a read-only ``Execution`` (the API's reads), or None."""
    with conn.cursor(row_factory=class_row(Execution)) as cursor:
        return cursor.execute(Q.execution_by_arn, {"arn": arn}).fetchone()


def execution_by_id(conn: Conn, execution_id: int, *, lock: bool = False) -> ExecutionRow | None:
    query = Q.execution_by_id_for_update if lock else Q.execution_by_id
    row = conn.execute(query, {"id": execution_id}).fetchone()
    return None if row is None else execution_row(row)


def list_function_executions(
    conn: Conn, filters: Mapping[str, Any], *, oldest_first: bool, limit: int
) -> list[Execution]:
    """A page of a function's executions, newest first (or oldest first). ``filters`` holds
    ``function``, and ``name``, ``statuses``, ``after``, ``before`` and the page marker's
    ``m_started`` and ``m_id``, each None when not given."""
    query = Q.list_function_executions_oldest_first if oldest_first else Q.list_function_executions_newest_first
    with conn.cursor(row_factory=class_row(Execution)) as cursor:
        return cursor.execute(query, {**filters, "limit": limit}).fetchall()


def update_execution(conn: Conn, execution_id: int, **values: Any) -> None:
    """Set the given columns of the execution. The column list is the one truly dynamic part of
    the engine's SQL, so it is composed with ``psycopg.sql`` (quoted identifiers), not text."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in values
    )
    statement = sql.SQL(Q.update_execution_columns).format(assignments=assignments)
    params = {key: Jsonb(v) if isinstance(v, dict) else v for key, v in values.items()}
    conn.execute(statement, {**params, "_id": execution_id})


def has_pending_work(conn: Conn, execution_id: int) -> bool:
    """``machine.has_pending_work`` in SQL, so a PENDING output is checked without loading every operation."""
    pairs = [f"{op_type}:{status}" for op_type, statuses in PENDING_STATUSES.items() for status in statuses]
    row = conn.execute(Q.has_pending_work, {"execution_id": execution_id, "pairs": pairs}).fetchone()
    return bool(row and row["pending"])


# --- operations -------------------------------------------------------------------------------


def load_ops(conn: Conn, execution_id: int, op_ids: Iterable[str] | None = None) -> dict[str, OperationDoc]:
    """Return operation documents by id (all of them, or the named ones) in first-seen order."""
    if op_ids is None:
        rows = conn.execute(Q.all_operations, {"execution_id": execution_id}).fetchall()
    else:
        rows = conn.execute(Q.named_operations, {"execution_id": execution_id, "op_ids": list(op_ids)}).fetchall()
    return {row["doc"]["Id"]: row["doc"] for row in rows}


def ops_touched_since(conn: Conn, execution_id: int, seq: int) -> list[OperationDoc]:
    rows = conn.execute(Q.operations_touched_since, {"execution_id": execution_id, "seq": seq}).fetchall()
    return [row["doc"] for row in rows]


def defer_outcome(conn: Conn, execution_id: int, op_id: str, outcome: Mapping[str, Any]) -> None:
    """Keep a chained invoke's outcome on its operation until the running invocation ends."""
    conn.execute(Q.defer_outcome, {"execution_id": execution_id, "op_id": op_id, "outcome": Jsonb(dict(outcome))})


def take_deferred_outcomes(conn: Conn, execution_id: int) -> list[tuple[OperationDoc, dict[str, Any]]]:
    """The outcomes ``defer_outcome`` kept, with their operations, cleared as they are read."""
    rows = conn.execute(Q.take_deferred_outcomes, {"execution_id": execution_id}).fetchall()
    return [(row["doc"], row["deferred_outcome"]) for row in rows]


def execution_by_callback(conn: Conn, callback_id: str) -> dict[str, Any] | None:
    """The execution a callback id belongs to, read without a lock, with ``callback_op`` (the
    callback's operation document) and ``fn_timeout`` (its function's, None if deleted)."""
    return conn.execute(Q.execution_by_callback, {"callback_id": callback_id}).fetchone()


# --- events -----------------------------------------------------------------------------------


def read_events(conn: Conn, execution_id: int, *, after: int, limit: int, reverse: bool) -> list[dict[str, Any]]:
    query = Q.events_before if reverse else Q.events_after
    return conn.execute(query, {"execution_id": execution_id, "after": after, "limit": limit}).fetchall()


# --- timers -----------------------------------------------------------------------------------


def set_timer(conn: Conn, execution_id: int, kind: str, op_id: str, due: datetime) -> None:
    conn.execute(Q.set_timer, {"execution_id": execution_id, "kind": kind, "op_id": op_id, "due": due})
    if due < datetime.now(UTC) + SCHEDULER_LOOKS_EVERY:
        conn.execute(Q.wake_scheduler, {"execution_id": str(execution_id)})


def execution_timeout_due(conn: Conn, execution_id: int) -> datetime | None:
    """When the execution's timeout timer is due (None if it has none)."""
    row = conn.execute(Q.execution_timeout_due, {"execution_id": execution_id}).fetchone()
    return row["due_at"] if row else None


def announce_timers(conn: Conn, execution_id: int) -> None:
    """Wake the scheduler (when the caller commits) if the execution has timers of the kinds it
    held back while an invocation ran, so that it looks at them again now that it has ended."""
    conn.execute(Q.announce_timers, {"channel_payload": str(execution_id), "execution_id": execution_id})


def cancel_all_timers_and_announce_done(conn: Conn, execution_id: int, arn: str) -> None:
    """Drop a finished execution's timers and NOTIFY ``durable_done`` (sent when the caller commits)."""
    conn.execute(Q.cancel_all_timers_and_announce_done, {"execution_id": execution_id, "arn": arn})


def take_due_timers(conn: Conn, now: datetime, limit: int, execution_id: int | None = None) -> list[DueTimer]:
    """Delete and return due timers, skipping rows another scheduler is already firing."""
    params = {"now": now, "limit": limit, "execution_id": execution_id}
    query = Q.take_due_timers if execution_id is None else Q.take_due_execution_timers
    with conn.cursor(row_factory=class_row(DueTimer)) as cursor:
        return cursor.execute(query, params).fetchall()


def due_timer_executions(conn: Conn, now: datetime, limit: int, running_grace: timedelta | None = None) -> list[int]:
    """Executions with a due timer, oldest first.

    With ``running_grace`` an execution whose invocation is running is left out until its
    operation timers have been due that long: the invocation fires them itself when it
    checkpoints or ends, without a second writer waiting on its row lock.
    """
    if running_grace is None:
        rows = conn.execute(Q.due_timer_executions, {"now": now, "limit": limit}).fetchall()
    else:
        params = {"now": now, "limit": limit, "grace": running_grace}
        rows = conn.execute(Q.due_timer_executions_with_grace, params).fetchall()
    return [row["execution_id"] for row in rows]


def next_timer_due(conn: Conn, now: datetime, running_grace: timedelta | None = None) -> datetime | None:
    """When ``due_timer_executions`` (with the same grace) will next find something."""
    if running_grace is None:
        row = conn.execute(Q.next_timer_due).fetchone()
    else:
        row = conn.execute(Q.next_timer_due_with_grace, {"grace": running_grace, "now": now}).fetchone()
    return row["due"] if row else None


# --- invocations ------------------------------------------------------------------------------


def insert_invocation(conn: Conn, values: Mapping[str, Any]) -> None:
    conn.execute(Q.insert_invocation, values)


def claim_invocation(conn: Conn, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """Take the execution's invocation lease and record the invocation, in one statement.

    Only an execution that is running, owes an invocation and has none running is claimed; of
    concurrent claims the row lock lets one through and the others match nothing. Returns the
    claimed row, plus the function's ``fn_*`` columns, the armed faults and the operations, or
    None (nothing written) when there is nothing to claim or the function is gone.

    The operations come from the statement's snapshot. If the claim had to wait for another
    writer's lock, the row it claimed is newer than that snapshot: then ``ops_seq`` (the
    operations' highest touch sequence number) falls short of the row's ``op_seq``, and the
    caller must read the operations again.
    """
    return conn.execute(Q.claim_invocation, values).fetchone()


def get_invocation(conn: Conn, execution_id: int, seq: int) -> Invocation | None:
    with conn.cursor(row_factory=class_row(Invocation)) as cursor:
        return cursor.execute(Q.get_invocation, {"execution_id": execution_id, "seq": seq}).fetchone()


def killed_now(conn: Conn, execution_id: int, seq: int) -> bool:
    """Whether the operator's "kill now" fired at invocation ``seq`` of the execution."""
    row = conn.execute(Q.killed_now, {"execution_id": execution_id, "invocation_seq": seq}).fetchone()
    return bool(row and row["killed"])


_INVOCATION_FIELDS = tuple(field.name for field in fields(Invocation))


def invocation_run_by(conn: Conn, execution_id: int, worker: str, pid: int) -> int | None:
    """The sequence number of the execution's invocation still running in process ``pid`` of
    host ``worker``, if there is one."""
    params = {"execution_id": execution_id, "worker": worker, "pid": pid}
    row = conn.execute(Q.invocation_run_by, params).fetchone()
    return None if row is None else int(row["seq"])


def running_invocations(conn: Conn, now: datetime, limit: int) -> list[Invocation]:
    with conn.cursor(row_factory=class_row(Invocation)) as cursor:
        return cursor.execute(Q.running_invocations, {"limit": limit}).fetchall()


def presumed_lost(
    conn: Conn, now: datetime, after: timedelta, backstop: timedelta, limit: int, taken_before: datetime | None = None
) -> list[dict[str, Any]]:
    """Executions owing an invocation whose message is presumed lost, with its ``redispatches``.

    A message is presumed lost when it was never sent (``dispatched_at`` NULL: the broker refused
    it), when the workers have since started an invocation from a message sent more than
    ``after`` later than it (the queue is read in order: it went past this one), or, whatever the
    workers do, when it has waited ``backstop`` doubled by each re-dispatch so far (at most 64
    times ``backstop``), or when it was sent before ``taken_before`` (a host found lost then may
    have taken it without starting it). A queue that is merely slow, or has no worker reading it,
    is left alone.
    """
    params = {"now": now, "after": after, "backstop": backstop, "limit": limit, "taken_before": taken_before}
    return conn.execute(Q.presumed_lost, params).fetchall()


def mark_redispatched(conn: Conn, execution_id: int, now: datetime) -> dict[str, Any] | None:
    """Count one more message sent for the execution's owed invocation; return its generation
    (``redispatches``) and the function's ``fn_timeout``, or None if it no longer waits for one."""
    return conn.execute(Q.mark_redispatched, {"now": now, "execution_id": execution_id}).fetchone()


def mark_undispatched(conn: Conn, execution_ids: list[int]) -> None:
    """The broker refused these executions' messages: the re-dispatcher sends them at its next round."""
    conn.execute(Q.mark_undispatched, {"execution_ids": execution_ids})


# --- quarantine -------------------------------------------------------------------------------


def quarantine(conn: Conn, execution_id: int, note: Mapping[str, Any], now: datetime) -> None:
    """Mark the execution as one the background loops leave alone, with ``note`` (the loop, its
    failures, since when, the last error) for the dashboard."""
    conn.execute(Q.quarantine, {"now": now, "note": Jsonb(dict(note)), "execution_id": execution_id})


def release_quarantine(conn: Conn, arn: str) -> dict[str, Any] | None:
    """Clear the execution's quarantine; return its id and the note it had, or None if it was
    not quarantined (or does not exist)."""
    return conn.execute(Q.release_quarantine, {"arn": arn}).fetchone()


# --- replay record ----------------------------------------------------------------------------


def armed_faults(conn: Conn, execution_id: int) -> list[dict[str, Any]]:
    return conn.execute(Q.armed_faults, {"execution_id": execution_id}).fetchall()


def mark_fault_fired(conn: Conn, fault_id: int, at: datetime | str, invocation_seq: int) -> None:
    """``at`` may be the journal's ISO 8601 text, which PostgreSQL reads as a timestamptz."""
    params = {"at": at, "invocation_seq": invocation_seq, "fault_id": fault_id}
    conn.execute(Q.mark_fault_fired, params)


def end_invocation(
    conn: Conn,
    execution_id: int,
    seq: int,
    end: Mapping[str, Any],
    body_runs: list[dict[str, Any]],
    log_lines: list[dict[str, Any]],
) -> None:
    """Close an invocation in one statement: its InvocationCompleted event (``end``: event_id,
    event, now, outcome, error), its outcome, and the step body runs and log lines it saw.

    Rows travel as one JSON array per table: cheaper to send than an array per column.
    """
    conn.execute(
        Q.end_invocation,
        {
            "id": execution_id,
            "seq": seq,
            "event_id": end["event_id"],
            "event": Jsonb(end["event"]),
            "now": end["now"],
            "outcome": end["outcome"],
            "error": Jsonb(end["error"]) if end["error"] else None,
            "runs": Jsonb(body_runs),
            "logs": Jsonb(log_lines),
        },
    )


# --- the checkpoint fast path: one read and one write statement -----------------------------


def write_transition(
    conn: Conn,
    execution: Mapping[str, Any],
    ops: Sequence[Mapping[str, Any]],
    events: list[dict[str, Any]],
    timers: list[tuple[str, str, datetime]],
    cancel: list[tuple[str, str]],
    now: datetime,
    *,
    invocation_seq: int | None,
    mark_seen: bool,
    guard: Mapping[str, Any] | None = None,
    wake: str | None = None,
    durable: bool = True,
) -> tuple[Sequences, bool, bool]:
    """Write a state-machine transition in one statement: operations, history (recorded as
    ``invocation_seq``'s, or the service's for None), timers and the execution row's counters.

    Touch and event sequence numbers are assigned here and returned (``execution`` is left as it
    is: the caller updates its row with them, whether or not the guarded write was made).
    ``mark_seen`` (a checkpoint whose answer carries everything) moves ``seen_seq`` up to say
    the handler has now seen every operation.

    With ``guard`` (the execution's ``token_seq``, ``op_seq`` and ``event_seq`` as the writer last
    saw them) nothing is written unless the execution is still running unchanged: the statement
    then needs no lock taken beforehand. With ``wake`` (a reason) the writer is the service, not
    an invocation: the guard also holds ``invocation_seq`` and ``running`` as the writer read
    them, and the execution is marked to be invoked for that reason (dispatched now unless an
    invocation is running). Without ``durable`` (an invocation's guarded write only) the commit does
    not wait for the disk: a database crash soon after may lose it. Return (the new sequences,
    written, some timer of the execution is due).
    """
    assert durable or (guard is not None and wake is None), "only an invocation's guarded write may skip the disk"
    op_records, event_records, sequences = numbered(execution, ops, ((e, None) for e in events), mark_seen=mark_seen)
    set_keys = {(kind, op_id) for kind, op_id, _ in timers}
    row = conn.execute(
        Q.write_transition_waking
        if wake is not None
        else Q.write_transition_guarded
        if guard is not None
        else Q.write_transition,
        {
            "id": execution["id"],
            "now": now,
            "inv": invocation_seq,
            "ops": Jsonb(op_records),
            "events": Jsonb(event_records),
            "cancel": Jsonb([{"kind": k, "op_id": o} for k, o in cancel if (k, o) not in set_keys]),
            "timers": Jsonb([{"kind": k, "op_id": o, "due_at": due.isoformat()} for k, o, due in timers]),
            "op_seq": sequences.op_seq,
            "seen_seq": sequences.seen_seq,
            "event_seq": sequences.event_seq,
            "token_seq": execution["token_seq"],
            "counters": Jsonb(execution["counters"]),
            "horizon": SCHEDULER_LOOKS_EVERY,
            "wake": wake,
            "durable": durable,
            **{f"guard_{key}": value for key, value in (guard or {}).items()},
        },
    ).fetchone()
    assert row is not None
    return sequences, bool(row["written"]), bool(row["timers_due"])


def end_invocation_guarded(
    conn: Conn,
    execution: Mapping[str, Any],
    seq: int,
    guard: Mapping[str, int],
    ending: Mapping[str, Any],
    journal: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> tuple[dict[str, Any] | None, Sequences]:
    """End invocation ``seq`` in one statement, if the execution is still as its invocation last
    wrote it (``guard``: token, op and event sequence numbers). ``execution`` is the row as it must
    become (running no more, its token advanced); ``ending`` holds ``now``, ``outcome``, and
    ``events`` (InvocationCompleted first, each paired with its invocation sequence or None) and
    ``ops`` (an EXECUTION operation closed by a finish), ``fired`` (WAIT operations the ending
    completes: their timers came due while the invocation ran) and ``wake`` (the reason to invoke
    again, or None). A finish also drops the timers and NOTIFYs ``durable_done``. A suspension
    is refused while a timer of the execution is due that it does not fire; one that leaves
    timers NOTIFYs the scheduler, which held them back while the invocation ran.

    Return None if nothing was written, else the row with ``fn_timeout`` (the function's
    timeout now, for the dispatch that ``wake`` asks for); and the execution's new sequences
    (``execution`` is left as it is).
    """
    op_records, event_records, sequences = numbered(
        execution, ending["ops"], ending["events"], mark_seen=True, unseen_ops=ending["fired"]
    )
    runs, logs = journal
    row = conn.execute(
        Q.end_invocation_guarded,
        {
            "id": execution["id"],
            "arn": execution["arn"],
            "seq": seq,
            "now": ending["now"],
            "outcome": ending["outcome"],
            "status": execution["status"],
            "result": execution["result"],
            "ended_at": execution["ended_at"],
            "finished": execution["status"] != "RUNNING",
            "fired": [op["Id"] for op in ending["fired"]],
            "wake": ending["wake"],
            "function_name": execution["function_name"],
            "op_seq": sequences.op_seq,
            "seen_seq": sequences.seen_seq,
            "event_seq": sequences.event_seq,
            "token_seq": execution["token_seq"],
            "counters": Jsonb(execution["counters"]),
            "ops": Jsonb(op_records),
            "events": Jsonb(event_records),
            "runs": Jsonb(runs),
            "logs": Jsonb(logs),
            **{f"guard_{key}": value for key, value in guard.items()},
        },
    ).fetchone()
    return (row if row and row["written"] else None), sequences


# --- optimistic duties: a snapshot read without a lock, and the guarded first statement ----------


def lock_if_unchanged(conn: Conn, seen: Mapping[str, Any]) -> ExecutionRow | None:
    """Open a duty's transaction: lock the execution row only if it is still as the duty's
    snapshot ``seen`` has it, and return the row as it is now; None (nothing locked, nothing
    written) if another writer changed it in between, so the duty reads again and retries."""
    guard = {key: seen[key] for key in GUARDED_COLUMNS}
    row = conn.execute(
        Q.lock_if_unchanged, {**guard, "no_pending_finish": seen.get("pending_finish") is None}
    ).fetchone()
    return None if row is None else execution_row(row)


def read_checkpoint_snapshot(conn: Conn, arn: str, op_ids: list[str], now: datetime) -> dict[str, Any] | None:
    """What a checkpoint needs, in one statement and without a lock: the execution row plus
    ``referenced_ops`` (the batch's operations and their parents), ``unseen_ops`` (touched since
    the handler last looked) and ``timers_due``; why the statement reads them the way it does is
    in engine/sql/transitions.sql."""
    return conn.execute(Q.read_checkpoint_snapshot, {"arn": arn, "ids": Jsonb(op_ids), "now": now}).fetchone()


def execution_with_invocation(conn: Conn, execution_id: int, seq: int) -> tuple[ExecutionRow | None, Invocation | None]:
    """The execution and one of its invocations, in one statement and without a lock."""
    row = conn.execute(Q.execution_with_invocation, {"seq": seq, "execution_id": execution_id}).fetchone()
    if row is None:
        return None, None
    invocation = Invocation(**{name: row[f"inv_{name}"] for name in _INVOCATION_FIELDS}) if row["inv_found"] else None
    return execution_row(row), invocation


def unclaimed_execution(conn: Conn, execution_id: int, generation: int | None) -> dict[str, Any] | None:
    """Why a claim matched nothing, in one statement without a lock: the execution row plus
    ``claimable`` and ``function_found``. None if the execution is gone."""
    return conn.execute(Q.unclaimed_execution, {"generation": generation, "execution_id": execution_id}).fetchone()


def callback_heartbeat_timeout(conn: Conn, execution_id: int, op_id: str) -> int | None:
    """The HeartbeatTimeout the callback operation ``op_id`` was started with, if any."""
    started = conn.execute(Q.callback_heartbeat_timeout, {"execution_id": execution_id, "op_id": op_id}).fetchone()
    return (started["doc"].get("CallbackStartedDetails") or {}).get("HeartbeatTimeout") if started else None


RETAINED_TABLES = (
    "durable_event",
    "durable_operation",
    "durable_invocation",
    "durable_timer",
    "durable_body_run",
    "durable_log",
    "durable_effect",
    "durable_fault",
    "durable_journal_chunk",  # a running invocation's shipped replay record (issue 19)
)


def purge_expired(conn: Conn, limit: int) -> int:
    """Delete executions whose retention period has passed since they ended, with every row of
    theirs; skip rows another purge holds. Return how many were deleted."""
    ids = [row["id"] for row in conn.execute(Q.expired_executions, {"limit": limit}).fetchall()]
    if ids:
        purge_executions(conn, ids)
    return len(ids)


def purge_executions(conn: Conn, ids: list[int]) -> None:
    """Delete these executions with every row of theirs (retention, DeleteDurableExecution)."""
    for table in RETAINED_TABLES:
        conn.execute(sql.SQL(Q.purge_rows_of).format(table=sql.Identifier(table)), {"ids": ids})
    conn.execute(Q.purge_executions, {"ids": ids})


# --- worker processes and the control channel (issue 19) --------------------------------------


def _worker_key(worker: Mapping[str, Any]) -> dict[str, Any]:
    return {"host_id": worker["host_id"], "hostname": worker["hostname"], "since": worker["since"]}


def register_worker(conn: Conn, worker: Mapping[str, Any], pid: int, role: str, started_at: datetime) -> int:
    params = {
        "host_id": worker["host_id"],
        "hostname": worker["hostname"],
        "pid": pid,
        "role": role,
        "started_at": started_at,
    }
    row = conn.execute(Q.register_worker, params).fetchone()
    assert row is not None  # INSERT ... RETURNING
    return int(row["id"])


def renew_workers(conn: Conn, worker: Mapping[str, Any], pids: list[int], beat: timedelta) -> None:
    """Renew the lease of this worker's live processes ``pids``; stop its rows of processes gone."""
    conn.execute(Q.renew_workers, {**_worker_key(worker), "pids": pids, "beat": beat})


def stop_workers(conn: Conn, worker: Mapping[str, Any]) -> None:
    conn.execute(Q.stop_workers, _worker_key(worker))


def lost_hosts(conn: Conn, hosts: list[str], lease: timedelta) -> dict[str, set[int]]:
    """Of ``hosts``, those that registered workers and have none live: host id -> the pids they ran."""
    rows = conn.execute(Q.lost_hosts, {"hosts": hosts, "lease": lease}).fetchall()
    return {row["host_id"]: set(row["pids"]) for row in rows}


def worker_process_state(conn: Conn, host_id: str, pid: int, lease: timedelta) -> dict[str, Any]:
    """Whether ``host_id`` registered, is live, and runs ``pid`` as a worker process not stopped."""
    row = conn.execute(Q.worker_process_state, {"host_id": host_id, "pid": pid, "lease": lease}).fetchone()
    assert row is not None  # an aggregate: always one row
    return row


def newly_lost_hosts(conn: Conn, lease: timedelta) -> list[str]:
    """Hosts whose processes all went without a goodbye past the lease, not yet marked lost."""
    return [row["host_id"] for row in conn.execute(Q.newly_lost_hosts, {"lease": lease})]


def mark_host_lost(conn: Conn, host_id: str) -> None:
    conn.execute(Q.mark_host_lost, {"host_id": host_id})


def notify_control(conn: Conn, message: Mapping[str, Any]) -> None:
    """Send ``message`` to every worker parent's listener when the caller's transaction commits."""
    conn.execute(Q.notify_control, {"message": json.dumps(message)})
