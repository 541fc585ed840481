"""SQL for the engine tables. Every function runs inside the caller's transaction (``conn``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from engine.machine import PENDING_STATUSES

EXECUTION_COLUMNS = """
    id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish
"""


# The same, qualified, for statements that join another table.
_E_COLUMNS = ", ".join(f"e.{column.strip()}" for column in EXECUTION_COLUMNS.split(","))


def ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


# --- functions --------------------------------------------------------------------------------


def get_function(conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM durable_function WHERE name = %s", (name,)).fetchone()


def list_functions(conn: psycopg.Connection, *, after: str, limit: int) -> list[dict[str, Any]]:
    sql = "SELECT * FROM durable_function WHERE name > %s ORDER BY name LIMIT %s"
    return conn.execute(sql, (after, limit)).fetchall()


def upsert_function(conn: psycopg.Connection, fn: Mapping[str, Any]) -> dict[str, Any]:
    row = conn.execute(
        """
        INSERT INTO durable_function (name, handler, description, timeout, durable_config, environment,
            maximum_retry_attempts, invocation_retry, revision_id, created_at, last_modified)
        VALUES (%(name)s, %(handler)s, %(description)s, %(timeout)s, %(durable_config)s, %(environment)s,
            %(maximum_retry_attempts)s, %(invocation_retry)s, %(revision_id)s, %(now)s, %(now)s)
        ON CONFLICT (name) DO UPDATE SET handler = EXCLUDED.handler, description = EXCLUDED.description,
            timeout = EXCLUDED.timeout, durable_config = EXCLUDED.durable_config,
            environment = EXCLUDED.environment, maximum_retry_attempts = EXCLUDED.maximum_retry_attempts,
            invocation_retry = EXCLUDED.invocation_retry, revision_id = EXCLUDED.revision_id,
            last_modified = EXCLUDED.last_modified
        RETURNING *
        """,
        {
            **fn,
            "durable_config": Jsonb(fn["durable_config"]) if fn["durable_config"] is not None else None,
            "environment": Jsonb(fn["environment"]),
            "invocation_retry": Jsonb(fn["invocation_retry"]),
        },
    ).fetchone()
    assert row is not None
    return row


# --- executions -------------------------------------------------------------------------------


def insert_started_execution(
    conn: psycopg.Connection, values: Mapping[str, Any], op: dict[str, Any], event: dict[str, Any], timeout_at: datetime
) -> dict[str, Any] | None:
    """Start an execution in one statement: its row (already asking to be invoked), its EXECUTION
    operation, ``ExecutionStarted`` and its execution-timeout timer. Return None, and write
    nothing, if the (function, name) pair is already taken.

    One statement is one round trip and, on an autocommit connection, one transaction: a start
    costs what the bare INSERT + COMMIT it must pay anyway costs, plus the JSON.
    """
    record = _op_record({"op_seq": 0}, op)
    return conn.execute(
        f"""
        WITH x AS (
            INSERT INTO durable_execution (arn, function_name, name, input, status, started_at,
                execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
                running, needs_invoke, invoke_reason, dispatched_at, consecutive_failures, op_seq, seen_seq,
                event_seq, parent_arn, parent_op_id, counters)
            VALUES (%(arn)s, %(function_name)s, %(name)s, %(input)s, 'RUNNING', %(started_at)s,
                %(execution_timeout)s, %(retention_days)s, %(time_scale)s, %(invocation_type)s, 0, 0,
                false, true, 'start', %(started_at)s, 0, 1, 0, 1, %(parent_arn)s, %(parent_op_id)s, '{{}}')
            ON CONFLICT (function_name, name) DO NOTHING
            RETURNING {EXECUTION_COLUMNS}),
        o AS (
            INSERT INTO durable_operation (execution_id, op_id, ordinal, type, status, attempt, touch_seq,
                started_at, doc)
            SELECT x.id, %(op_id)s, 1, 'EXECUTION', %(op_status)s, 0, 1, %(op_started_at)s, %(op_doc)s FROM x),
        e AS (
            INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, doc)
            SELECT x.id, 1, %(event_type)s, %(started_at)s, %(op_id)s, %(event_doc)s FROM x),
        t AS (
            INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
            SELECT x.id, 'execution_timeout', '', %(timeout_at)s FROM x)
        SELECT x.*, CASE WHEN %(timeout_at)s < %(started_at)s + %(horizon)s
            THEN pg_notify('durable_timers', x.id::text) END AS notified FROM x
        """,
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


def execution_by_name(conn: psycopg.Connection, function_name: str, name: str) -> dict[str, Any] | None:
    sql = f"SELECT {EXECUTION_COLUMNS} FROM durable_execution WHERE function_name = %s AND name = %s"
    return conn.execute(sql, (function_name, name)).fetchone()


def execution_by_arn(conn: psycopg.Connection, arn: str, *, lock: bool = False) -> dict[str, Any] | None:
    sql = f"SELECT {EXECUTION_COLUMNS} FROM durable_execution WHERE arn = %s"
    return conn.execute(sql + (" FOR UPDATE" if lock else ""), (arn,)).fetchone()


def execution_by_id(conn: psycopg.Connection, execution_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    sql = f"SELECT {EXECUTION_COLUMNS} FROM durable_execution WHERE id = %s"
    return conn.execute(sql + (" FOR UPDATE" if lock else ""), (execution_id,)).fetchone()


def update_execution(conn: psycopg.Connection, execution_id: int, **values: Any) -> None:
    columns = ", ".join(f"{key} = %({key})s" for key in values)
    params = {key: Jsonb(v) if isinstance(v, dict) else v for key, v in values.items()}
    conn.execute(f"UPDATE durable_execution SET {columns} WHERE id = %(_id)s", {**params, "_id": execution_id})


# --- operations -------------------------------------------------------------------------------


def load_ops(
    conn: psycopg.Connection, execution_id: int, op_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Return operation documents by id (all of them, or the named ones) in first-seen order."""
    if op_ids is None:
        rows = conn.execute(
            "SELECT doc FROM durable_operation WHERE execution_id = %s ORDER BY ordinal", (execution_id,)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT doc FROM durable_operation WHERE execution_id = %s AND op_id = ANY(%s) ORDER BY ordinal",
            (execution_id, list(op_ids)),
        ).fetchall()
    return {row["doc"]["Id"]: row["doc"] for row in rows}


def ops_touched_since(conn: psycopg.Connection, execution_id: int, seq: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT doc FROM durable_operation WHERE execution_id = %s AND touch_seq > %s ORDER BY ordinal",
        (execution_id, seq),
    ).fetchall()
    return [row["doc"] for row in rows]


def execution_by_callback(conn: psycopg.Connection, callback_id: str) -> dict[str, Any] | None:
    """The execution a callback id belongs to, read without a lock, with ``callback_op`` (the
    callback's operation document) and ``fn_timeout`` (its function's, None if deleted)."""
    return conn.execute(
        f"""SELECT {_E_COLUMNS}, c.doc AS callback_op, f.timeout AS fn_timeout
            FROM durable_operation c JOIN durable_execution e ON e.id = c.execution_id
            LEFT JOIN durable_function f ON f.name = e.function_name
            WHERE c.callback_id = %s""",
        (callback_id,),
    ).fetchone()


# --- events -----------------------------------------------------------------------------------


def read_events(
    conn: psycopg.Connection, execution_id: int, *, after: int, limit: int, reverse: bool
) -> list[dict[str, Any]]:
    if reverse:
        sql = """SELECT event_id, timestamp, doc FROM durable_event WHERE execution_id = %s AND event_id < %s
                 ORDER BY event_id DESC LIMIT %s"""
    else:
        sql = """SELECT event_id, timestamp, doc FROM durable_event WHERE execution_id = %s AND event_id > %s
                 ORDER BY event_id LIMIT %s"""
    return conn.execute(sql, (execution_id, after, limit)).fetchall()


# --- timers -----------------------------------------------------------------------------------


# The scheduler looks at the timers at least this often (engine.scheduler.MAX_SLEEP): a timer due
# later than that from now is fired on time without a NOTIFY to wake it.
SCHEDULER_LOOKS_EVERY = timedelta(seconds=0.5)

# Timers a running invocation fires itself, at its next checkpoint or at its end (see
# ``due_timer_executions``); the execution's own deadline and recovery re-invocations are not.
OWN_TIMER_KINDS = ("wait", "retry", "callback_timeout", "callback_heartbeat")
_OWN_KINDS_SQL = "ARRAY[" + ", ".join(f"'{kind}'" for kind in OWN_TIMER_KINDS) + "]"


def set_timer(conn: psycopg.Connection, execution_id: int, kind: str, op_id: str, due: datetime) -> None:
    conn.execute(
        """
        INSERT INTO durable_timer (execution_id, kind, op_id, due_at) VALUES (%s, %s, %s, %s)
        ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at
        """,
        (execution_id, kind, op_id, due),
    )
    if due < datetime.now(UTC) + SCHEDULER_LOOKS_EVERY:
        conn.execute("SELECT pg_notify('durable_timers', %s)", (str(execution_id),))


def announce_timers(conn: psycopg.Connection, execution_id: int) -> None:
    """Wake the scheduler (when the caller commits) if the execution has timers of the kinds it
    held back while an invocation ran, so that it looks at them again now that it has ended."""
    conn.execute(
        f"""SELECT pg_notify('durable_timers', %s) FROM durable_timer
            WHERE execution_id = %s AND kind = ANY({_OWN_KINDS_SQL}) LIMIT 1""",
        (str(execution_id), execution_id),
    )


def cancel_all_timers_and_announce_done(conn: psycopg.Connection, execution_id: int, arn: str) -> None:
    """Drop a finished execution's timers and NOTIFY ``durable_done`` (sent when the caller commits)."""
    conn.execute(
        "WITH d AS (DELETE FROM durable_timer WHERE execution_id = %s) SELECT pg_notify('durable_done', %s)",
        (execution_id, arn),
    )


def take_due_timers(
    conn: psycopg.Connection, now: datetime, limit: int, execution_id: int | None = None
) -> list[dict[str, Any]]:
    """Delete and return due timers, skipping rows another scheduler is already firing."""
    scope = "AND execution_id = %(execution_id)s" if execution_id is not None else ""
    return conn.execute(
        f"""
        DELETE FROM durable_timer WHERE id IN (
            SELECT id FROM durable_timer WHERE due_at <= %(now)s {scope}
            ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
        RETURNING execution_id, kind, op_id, due_at
        """,
        {"now": now, "limit": limit, "execution_id": execution_id},
    ).fetchall()


# A timer (``t``) of a quarantined execution: the scheduler neither fires it nor wakes up for it.
_T_QUARANTINED = (
    "EXISTS (SELECT 1 FROM durable_execution q WHERE q.id = t.execution_id AND q.quarantined_at IS NOT NULL)"
)


def due_timer_executions(
    conn: psycopg.Connection, now: datetime, limit: int, running_grace: timedelta | None = None
) -> list[int]:
    """Executions with a due timer, oldest first.

    With ``running_grace`` an execution whose invocation is running is left out until its
    operation timers have been due that long: the invocation fires them itself when it
    checkpoints or ends, without a second writer waiting on its row lock.
    """
    if running_grace is None:
        rows = conn.execute(
            f"""SELECT execution_id FROM durable_timer t WHERE due_at <= %s AND NOT {_T_QUARANTINED}
                GROUP BY execution_id ORDER BY min(due_at) LIMIT %s""",
            (now, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            f"""
            SELECT t.execution_id FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
            WHERE t.due_at <= %(now)s
              AND (NOT e.running OR t.kind <> ALL({_OWN_KINDS_SQL}) OR t.due_at <= %(now)s - %(grace)s)
              AND e.quarantined_at IS NULL
            GROUP BY t.execution_id ORDER BY min(t.due_at) LIMIT %(limit)s
            """,
            {"now": now, "limit": limit, "grace": running_grace},
        ).fetchall()
    return [row["execution_id"] for row in rows]


def next_timer_due(conn: psycopg.Connection, now: datetime, running_grace: timedelta | None = None) -> datetime | None:
    """When ``due_timer_executions`` (with the same grace) will next find something."""
    if running_grace is None:
        row = conn.execute(f"SELECT min(due_at) AS due FROM durable_timer t WHERE NOT {_T_QUARANTINED}").fetchone()
    else:
        # Only a timer due within the grace can be held back past a later one: those few are
        # joined; for the rest the due_at index answers, as without a grace.
        row = conn.execute(
            f"""
            SELECT least(
                (SELECT min(CASE WHEN e.running AND t.kind = ANY({_OWN_KINDS_SQL}) THEN t.due_at + %(grace)s
                        ELSE t.due_at END)
                 FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
                 WHERE t.due_at <= %(now)s + %(grace)s AND e.quarantined_at IS NULL),
                (SELECT min(due_at) FROM durable_timer t WHERE due_at > %(now)s + %(grace)s
                 AND NOT {_T_QUARANTINED})) AS due
            """,
            {"grace": running_grace, "now": now},
        ).fetchone()
    return row["due"] if row else None


# --- invocations ------------------------------------------------------------------------------


def insert_invocation(conn: psycopg.Connection, values: Mapping[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO durable_invocation (execution_id, seq, request_id, reason, started_at, deadline, worker, pid,
            dispatched_at)
        VALUES (%(execution_id)s, %(seq)s, %(request_id)s, %(reason)s, %(started_at)s, %(deadline)s, %(worker)s, %(pid)s,
            %(dispatched_at)s)
        """,
        values,
    )


def claim_invocation(conn: psycopg.Connection, values: Mapping[str, Any]) -> dict[str, Any] | None:
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
    return conn.execute(
        f"""
        WITH c AS (
            UPDATE durable_execution e SET invocation_seq = e.invocation_seq + 1, running = true,
                needs_invoke = false, seen_seq = e.op_seq,
                lease_until = %(now)s + make_interval(secs => f.timeout) + %(lease_grace)s,
                counters = jsonb_set(coalesce(e.counters, '{{}}'), '{{invocations}}',
                    to_jsonb(coalesce((e.counters ->> 'invocations')::int, 0) + 1))
            FROM durable_function f
            WHERE e.id = %(execution_id)s AND e.status = 'RUNNING' AND NOT e.running AND e.needs_invoke
                AND f.name = e.function_name AND e.redispatches <= coalesce(%(generation)s, e.redispatches)
            RETURNING {_E_COLUMNS}, f.name AS fn_name, f.handler AS fn_handler, f.timeout AS fn_timeout,
                f.environment AS fn_environment, %(now)s + make_interval(secs => f.timeout) AS deadline),
        i AS (
            INSERT INTO durable_invocation (execution_id, seq, request_id, reason, started_at, deadline, worker, pid,
                dispatched_at)
            SELECT c.id, c.invocation_seq, %(request_id)s, c.invoke_reason, %(now)s, c.deadline, %(worker)s, %(pid)s,
                c.dispatched_at
            FROM c)
        SELECT c.*, o.ops, o.ops_seq,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'kind', d.kind,
                        'step_name', d.step_name, 'phase', d.phase) ORDER BY d.id), '[]'::jsonb)
                     FROM durable_fault d WHERE d.execution_id = c.id AND d.fired_at IS NULL
                         AND d.phase IN ('body_start', 'after_body')) AS faults
        FROM c, LATERAL (
            SELECT coalesce(json_agg(x.doc ORDER BY x.ordinal), '[]'::json) AS ops, max(x.touch_seq) AS ops_seq
            FROM durable_operation x WHERE x.execution_id = c.id) o
        """,
        values,
    ).fetchone()


def get_invocation(conn: psycopg.Connection, execution_id: int, seq: int) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM durable_invocation WHERE execution_id = %s AND seq = %s", (execution_id, seq)
    ).fetchone()


_INVOCATION_FIELDS = ("seq", "request_id", "started_at", "ended_at", "deadline")


def invocation_run_by(conn: psycopg.Connection, execution_id: int, worker: str, pid: int) -> int | None:
    """The sequence number of the execution's invocation still running in process ``pid`` of
    host ``worker``, if there is one."""
    row = conn.execute(
        """SELECT seq FROM durable_invocation
           WHERE execution_id = %s AND worker = %s AND pid = %s AND ended_at IS NULL
           ORDER BY seq DESC LIMIT 1""",
        (execution_id, worker, pid),
    ).fetchone()
    return None if row is None else int(row["seq"])


def running_invocations(conn: psycopg.Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        """
        SELECT e.id, i.seq, i.worker, i.pid, i.deadline FROM durable_execution e
        JOIN durable_invocation i ON i.execution_id = e.id AND i.seq = e.invocation_seq
        WHERE e.running AND e.quarantined_at IS NULL ORDER BY e.lease_until LIMIT %s
        """,
        (limit,),
    ).fetchall()


def presumed_lost(
    conn: psycopg.Connection, now: datetime, after: timedelta, backstop: timedelta, limit: int
) -> list[dict[str, Any]]:
    """Executions owing an invocation whose message is presumed lost, with its ``redispatches``.

    A message is presumed lost when it was never sent (``dispatched_at`` NULL: the broker refused
    it), when the workers have since started an invocation from a message sent more than
    ``after`` later than it (the queue is read in order: it went past this one), or, whatever the
    workers do, when it has waited ``backstop`` doubled by each re-dispatch so far (at most 64
    times ``backstop``). A queue that is merely slow, or has no worker reading it, is left alone.
    """
    return conn.execute(
        """
        WITH mark AS (SELECT max(dispatched_at) AS consumed FROM durable_invocation)
        SELECT e.id, e.redispatches FROM durable_execution e, mark
        WHERE e.needs_invoke AND NOT e.running AND e.status = 'RUNNING' AND e.quarantined_at IS NULL
            AND (e.dispatched_at IS NULL
                OR e.dispatched_at < %(now)s - %(after)s AND mark.consumed > e.dispatched_at + %(after)s
                OR e.dispatched_at < %(now)s - %(backstop)s * power(2, least(e.redispatches, 6)))
        ORDER BY e.dispatched_at NULLS FIRST LIMIT %(limit)s
        """,
        {"now": now, "after": after, "backstop": backstop, "limit": limit},
    ).fetchall()


def mark_redispatched(conn: psycopg.Connection, execution_id: int, now: datetime) -> dict[str, Any] | None:
    """Count one more message sent for the execution's owed invocation; return its generation
    (``redispatches``) and the function's ``fn_timeout``, or None if it no longer waits for one."""
    return conn.execute(
        """UPDATE durable_execution e SET redispatches = e.redispatches + 1, dispatched_at = %s
           WHERE e.id = %s AND e.needs_invoke AND NOT e.running AND e.status = 'RUNNING'
           RETURNING e.redispatches, (SELECT f.timeout FROM durable_function f WHERE f.name = e.function_name) AS fn_timeout""",
        (now, execution_id),
    ).fetchone()


def mark_undispatched(conn: psycopg.Connection, execution_ids: list[int]) -> None:
    """The broker refused these executions' messages: the re-dispatcher sends them at its next round."""
    conn.execute(
        "UPDATE durable_execution SET dispatched_at = NULL WHERE id = ANY(%s) AND needs_invoke AND NOT running",
        (execution_ids,),
    )


# --- quarantine -------------------------------------------------------------------------------


def quarantine(conn: psycopg.Connection, execution_id: int, note: Mapping[str, Any], now: datetime) -> None:
    """Mark the execution as one the background loops leave alone, with ``note`` (the loop, its
    failures, since when, the last error) for the dashboard."""
    conn.execute(
        "UPDATE durable_execution SET quarantined_at = %s, quarantine = %s WHERE id = %s",
        (now, Jsonb(dict(note)), execution_id),
    )


def release_quarantine(conn: psycopg.Connection, arn: str) -> dict[str, Any] | None:
    """Clear the execution's quarantine; return its id and the note it had, or None if it was
    not quarantined (or does not exist)."""
    return conn.execute(
        """UPDATE durable_execution e SET quarantined_at = NULL, quarantine = NULL
           FROM durable_execution old WHERE old.id = e.id AND e.arn = %s AND e.quarantined_at IS NOT NULL
           RETURNING e.id, old.quarantined_at, old.quarantine""",
        (arn,),
    ).fetchone()


# --- replay record ----------------------------------------------------------------------------


def armed_faults(conn: psycopg.Connection, execution_id: int) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT id, kind, step_name, phase FROM durable_fault
           WHERE execution_id = %s AND fired_at IS NULL AND phase IN ('body_start', 'after_body') ORDER BY id""",
        (execution_id,),
    ).fetchall()


def mark_fault_fired(conn: psycopg.Connection, fault_id: int, at: datetime, invocation_seq: int) -> None:
    conn.execute(
        "UPDATE durable_fault SET fired_at = %s, invocation_seq = %s WHERE id = %s AND fired_at IS NULL",
        (at, invocation_seq, fault_id),
    )


_BODY_RUNS_CTE = """
        INSERT INTO durable_body_run (execution_id, op_id, name, invocation_seq, attempt, started_at, ended_at, outcome)
        SELECT %(id)s, x.op_id, x.name, %(seq)s, x.attempt, x.started_at, x.ended_at, x.outcome
        FROM jsonb_to_recordset(%(runs)s) AS x(op_id text, name text, attempt int, started_at timestamptz,
            ended_at timestamptz, outcome text)"""
_LOG_LINES_CTE = """
        INSERT INTO durable_log (execution_id, invocation_seq, at, level, logger, message, op_id)
        SELECT %(id)s, %(seq)s, x.at, x.level, x.logger, x.message, x.op_id
        FROM jsonb_to_recordset(%(logs)s) AS x(at timestamptz, level text, logger text, message text, op_id text)"""
_END_INVOCATION = f"""
    WITH ev AS (
        INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
        VALUES (%(id)s, %(event_id)s, 'InvocationCompleted', %(now)s, NULL, %(seq)s, %(event)s)),
    inv AS (
        UPDATE durable_invocation SET ended_at = %(now)s, outcome = %(outcome)s, error = %(error)s
        WHERE execution_id = %(id)s AND seq = %(seq)s AND ended_at IS NULL),
    br AS ({_BODY_RUNS_CTE}),
    lg AS ({_LOG_LINES_CTE})
    SELECT 1
"""


def end_invocation(
    conn: psycopg.Connection,
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
        _END_INVOCATION,
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


def _op_record(execution: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    execution["op_seq"] += 1
    return {
        "op_id": op["Id"],
        "seq": execution["op_seq"],
        "parent_id": op.get("ParentId"),
        "name": op.get("Name"),
        "type": op["Type"],
        "sub_type": op.get("SubType"),
        "status": op["Status"],
        "attempt": (op.get("StepDetails") or {}).get("Attempt", 0),
        "started_at": _iso_ms(op.get("StartTimestamp")),
        "ended_at": _iso_ms(op.get("EndTimestamp")),
        "callback_id": (op.get("CallbackDetails") or {}).get("CallbackId"),
        "doc": op,
    }


def _event_record(
    execution: dict[str, Any], event: dict[str, Any], invocation_seq: int | None = None
) -> dict[str, Any]:
    execution["event_seq"] += 1
    return {
        "event_id": execution["event_seq"],
        "event_type": event["EventType"],
        "op_id": event.get("Id"),
        "inv": invocation_seq,
        "doc": event,
    }


def _iso_ms(ms: int | None) -> str | None:
    moment = ms_to_datetime(ms)
    return moment.isoformat() if moment else None


def write_transition(
    conn: psycopg.Connection,
    execution: dict[str, Any],
    ops: list[dict[str, Any]],
    events: list[dict[str, Any]],
    timers: list[tuple[str, str, datetime]],
    cancel: list[tuple[str, str]],
    now: datetime,
    *,
    invocation_seq: int | None,
    mark_seen: bool,
    guard: Mapping[str, Any] | None = None,
    wake: str | None = None,
) -> tuple[bool, bool]:
    """Write a state-machine transition in one statement: operations, history (recorded as
    ``invocation_seq``'s, or the service's for None), timers and the execution row's counters.

    Touch and event sequence numbers are assigned here and ``execution`` is updated in place.
    ``mark_seen`` (a checkpoint whose answer carries everything) moves ``seen_seq`` up to say
    the handler has now seen every operation.

    With ``guard`` (the execution's ``token_seq``, ``op_seq`` and ``event_seq`` as the writer last
    saw them) nothing is written unless the execution is still running unchanged: the statement
    then needs no lock taken beforehand. With ``wake`` (a reason) the writer is the service, not
    an invocation: the guard also holds ``invocation_seq`` and ``running`` as the writer read
    them, and the execution is marked to be invoked for that reason (dispatched now unless an
    invocation is running). Return (written, some timer of the execution is due).
    """
    op_records = [_op_record(execution, op) for op in ops]
    event_records = [_event_record(execution, event) for event in events]
    if mark_seen:
        execution["seen_seq"] = execution["op_seq"]
    set_keys = {(kind, op_id) for kind, op_id, _ in timers}
    row = conn.execute(
        WRITE_TRANSITION_WAKING
        if wake is not None
        else WRITE_TRANSITION_GUARDED
        if guard is not None
        else WRITE_TRANSITION,
        {
            "id": execution["id"],
            "now": now,
            "inv": invocation_seq,
            "ops": Jsonb(op_records),
            "events": Jsonb(event_records),
            "cancel": Jsonb([{"kind": k, "op_id": o} for k, o in cancel if (k, o) not in set_keys]),
            "timers": Jsonb([{"kind": k, "op_id": o, "due_at": due.isoformat()} for k, o, due in timers]),
            "op_seq": execution["op_seq"],
            "seen_seq": execution["seen_seq"],
            "event_seq": execution["event_seq"],
            "token_seq": execution["token_seq"],
            "counters": Jsonb(execution["counters"]),
            "horizon": SCHEDULER_LOOKS_EVERY,
            "wake": wake,
            **{f"guard_{key}": value for key, value in (guard or {}).items()},
        },
    ).fetchone()
    assert row is not None
    return bool(row["written"]), bool(row["timers_due"])


# Every sub-statement of a WITH runs to completion whether or not the final SELECT reads it;
# only u (the guard) and ti (whether to NOTIFY) are read.
_WRITE_TRANSITION = """
        WITH u AS (
            UPDATE durable_execution SET op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
                token_seq = %(token_seq)s, counters = %(counters)s {wake}
            WHERE id = %(id)s {guard} RETURNING 1),
        o AS (
            INSERT INTO durable_operation (execution_id, op_id, ordinal, parent_id, name, type, sub_type, status,
                attempt, touch_seq, started_at, ended_at, callback_id, doc)
            SELECT %(id)s, x.op_id, x.seq, x.parent_id, x.name, x.type, x.sub_type, x.status, x.attempt, x.seq,
                x.started_at, x.ended_at, x.callback_id, x.doc
            FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, parent_id text, name text, type text,
                sub_type text, status text, attempt int, started_at timestamptz, ended_at timestamptz,
                callback_id text, doc jsonb)
            WHERE true {after_guard}
            ON CONFLICT (execution_id, op_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
                touch_seq = EXCLUDED.touch_seq, ended_at = EXCLUDED.ended_at,
                callback_id = COALESCE(durable_operation.callback_id, EXCLUDED.callback_id), doc = EXCLUDED.doc),
        e AS (
            INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
            SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, %(inv)s, x.doc
            FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, doc jsonb)
            WHERE true {after_guard}),
        td AS (
            DELETE FROM durable_timer t USING jsonb_to_recordset(%(cancel)s) AS c(kind text, op_id text)
            WHERE t.execution_id = %(id)s AND t.kind = c.kind AND t.op_id = c.op_id {after_guard}),
        ti AS (
            INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
            SELECT %(id)s, x.kind, x.op_id, x.due_at
            FROM jsonb_to_recordset(%(timers)s) AS x(kind text, op_id text, due_at timestamptz)
            WHERE true {after_guard}
            ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at
            RETURNING kind, due_at)
        SELECT CASE WHEN EXISTS (SELECT 1 FROM ti WHERE due_at < %(now)s + %(horizon)s {unheld})
            THEN pg_notify('durable_timers', %(id)s::text) END AS notified,
            EXISTS (SELECT 1 FROM u) AS written,
            EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s) AS timers_due
        """
WRITE_TRANSITION = (
    _WRITE_TRANSITION.replace("{wake}", "").replace("{guard}", "").replace("{after_guard}", "").replace("{unheld}", "")
)
_UNCHANGED = """AND token_seq = %(guard_token_seq)s AND op_seq = %(guard_op_seq)s
    AND event_seq = %(guard_event_seq)s AND status = 'RUNNING' AND pending_finish IS NULL"""
# Written only if the execution is still as its writer last saw it, and still running this invocation.
WRITE_TRANSITION_GUARDED = (
    _WRITE_TRANSITION.replace("{wake}", "")
    .replace("{guard}", f"{_UNCHANGED} AND running")
    .replace("{after_guard}", "AND EXISTS (SELECT 1 FROM u)")
)
# ... by a running invocation, whose own timers the scheduler holds back for RUNNING_GRACE, no
# longer than it ever sleeps: it need not be woken for them.
WRITE_TRANSITION_GUARDED = WRITE_TRANSITION_GUARDED.replace("{unheld}", f"AND kind <> ALL({_OWN_KINDS_SQL})")
# Written by the service (a callback's answer) only if the execution is as it read it, running or
# not; the handler must then run again: now, or after the running invocation ends.
WRITE_TRANSITION_WAKING = (
    _WRITE_TRANSITION.replace(
        "{wake}",
        """, needs_invoke = true, invoke_reason = %(wake)s,
            dispatched_at = CASE WHEN running THEN dispatched_at ELSE %(now)s END""",
    )
    .replace(
        "{guard}",
        f"{_UNCHANGED} AND invocation_seq = %(guard_invocation_seq)s AND running = %(guard_running)s",
    )
    .replace("{after_guard}", "AND EXISTS (SELECT 1 FROM u)")
    .replace("{unheld}", "")
)


_ENDED_GUARDED = f"""
        WITH u AS (
            UPDATE durable_execution SET status = %(status)s, result = %(result)s, error = NULL,
                ended_at = %(ended_at)s, running = false, lease_until = NULL,
                needs_invoke = %(wake)s::text IS NOT NULL, invoke_reason = COALESCE(%(wake)s, invoke_reason),
                dispatched_at = CASE WHEN %(wake)s::text IS NULL THEN dispatched_at ELSE %(now)s END,
                consecutive_failures = 0, op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
                token_seq = %(token_seq)s, counters = %(counters)s
            WHERE id = %(id)s AND invocation_seq = %(seq)s AND token_seq = %(guard_token_seq)s
                AND op_seq = %(guard_op_seq)s AND event_seq = %(guard_event_seq)s
                AND status = 'RUNNING' AND running AND pending_finish IS NULL
                AND (%(finished)s OR NOT EXISTS (
                    SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s
                        AND NOT (t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[]))))
                AND (SELECT count(*) FROM durable_timer t WHERE t.execution_id = %(id)s AND t.kind = 'wait'
                        AND t.op_id = ANY(%(fired)s::text[]) AND t.due_at <= %(now)s) = cardinality(%(fired)s::text[])
            RETURNING 1),
        inv AS (
            UPDATE durable_invocation SET ended_at = %(now)s, outcome = %(outcome)s
            WHERE execution_id = %(id)s AND seq = %(seq)s AND ended_at IS NULL AND EXISTS (SELECT 1 FROM u)),
        o AS (
            UPDATE durable_operation d SET status = x.status, touch_seq = x.seq, ended_at = x.ended_at, doc = x.doc
            FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, status text, ended_at timestamptz, doc jsonb)
            WHERE d.execution_id = %(id)s AND d.op_id = x.op_id AND EXISTS (SELECT 1 FROM u)),
        e AS (
            INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
            SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, x.inv, x.doc
            FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, inv int, doc jsonb)
            WHERE EXISTS (SELECT 1 FROM u)),
        br AS ({_BODY_RUNS_CTE} WHERE EXISTS (SELECT 1 FROM u)),
        lg AS ({_LOG_LINES_CTE} WHERE EXISTS (SELECT 1 FROM u)),
        ta AS (DELETE FROM durable_timer t WHERE t.execution_id = %(id)s
            AND (%(finished)s OR t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[])) AND EXISTS (SELECT 1 FROM u))
        SELECT EXISTS (SELECT 1 FROM u) AS written,
            (SELECT f.timeout FROM durable_function f WHERE f.name = %(function_name)s) AS fn_timeout,
            CASE WHEN NOT EXISTS (SELECT 1 FROM u) THEN NULL
                WHEN %(finished)s THEN pg_notify('durable_done', %(arn)s)
                -- the scheduler held back this execution's timers while it ran: look again
                WHEN EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s
                    AND t.kind = ANY({_OWN_KINDS_SQL}) AND NOT (t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[])))
                THEN pg_notify('durable_timers', %(id)s::text) END AS notified
        """


def end_invocation_guarded(
    conn: psycopg.Connection,
    execution: dict[str, Any],
    seq: int,
    guard: Mapping[str, int],
    ending: Mapping[str, Any],
    journal: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> dict[str, Any] | None:
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
    timeout now, for the dispatch that ``wake`` asks for).
    """
    op_records = [_op_record(execution, op) for op in ending["ops"]]
    event_records = [_event_record(execution, event, inv) for event, inv in ending["events"]]
    execution["seen_seq"] = execution["op_seq"]
    op_records += [_op_record(execution, op) for op in ending["fired"]]  # not yet seen by the handler
    runs, logs = journal
    row = conn.execute(
        _ENDED_GUARDED,
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
            "op_seq": execution["op_seq"],
            "seen_seq": execution["seen_seq"],
            "event_seq": execution["event_seq"],
            "token_seq": execution["token_seq"],
            "counters": Jsonb(execution["counters"]),
            "ops": Jsonb(op_records),
            "events": Jsonb(event_records),
            "runs": Jsonb(runs),
            "logs": Jsonb(logs),
            **{f"guard_{key}": value for key, value in guard.items()},
        },
    ).fetchone()
    return row if row and row["written"] else None


def has_pending_work(conn: psycopg.Connection, execution_id: int) -> bool:
    """``machine.has_pending_work`` in SQL, so a PENDING output is checked without loading every operation."""
    pairs = [f"{op_type}:{status}" for op_type, statuses in PENDING_STATUSES.items() for status in statuses]
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM durable_operation
               WHERE execution_id = %s AND type || ':' || status = ANY(%s)) AS pending""",
        (execution_id, pairs),
    ).fetchone()
    return bool(row and row["pending"])


# --- optimistic duties: a snapshot read without a lock, and the guarded first statement ----------


def lock_if_unchanged(conn: psycopg.Connection, seen: Mapping[str, Any]) -> dict[str, Any] | None:
    """Open a duty's transaction: lock the execution row only if it is still as the duty's
    snapshot ``seen`` has it, and return the row as it is now; None (nothing locked, nothing
    written) if another writer changed it in between, so the duty reads again and retries.

    The sequence numbers cover every operation, event and token change; the flags are what the
    duties decide on. Every other column is taken from the returned row, read under the lock.
    The no-op SET is what makes this an UPDATE: it takes the row lock in the same statement.
    """
    return conn.execute(
        f"""UPDATE durable_execution SET token_seq = token_seq
            WHERE id = %(id)s AND status = %(status)s AND token_seq = %(token_seq)s AND op_seq = %(op_seq)s
                AND event_seq = %(event_seq)s AND invocation_seq = %(invocation_seq)s AND running = %(running)s
                AND needs_invoke = %(needs_invoke)s AND (pending_finish IS NULL) = %(no_pending_finish)s
            RETURNING {EXECUTION_COLUMNS}""",
        {
            **{key: seen[key] for key in _GUARDED_COLUMNS},
            "no_pending_finish": seen.get("pending_finish") is None,
        },
    ).fetchone()


_GUARDED_COLUMNS = ("id", "status", "token_seq", "op_seq", "event_seq", "invocation_seq", "running", "needs_invoke")


def read_checkpoint_snapshot(
    conn: psycopg.Connection, arn: str, op_ids: list[str], now: datetime
) -> dict[str, Any] | None:
    """What a checkpoint needs, in one statement and without a lock: the execution row plus
    ``referenced_ops``, ``unseen_ops`` and ``timers_due`` (see the shape notes below). The
    checkpoint's write is guarded by the row's sequence numbers, which says whether it is still
    exact.

    ``referenced_ops``: the batch's operations and parents, one unique-index lookup each
    (``op_id = ANY(...)`` gets a plan that reads every operation of the execution while the
    table has no statistics yet; ``LIMIT 1`` keeps the planner from flattening the lookup into
    that scan; the ids come as a JSON array so that the server keeps its generic plan of this
    prepared statement). ``unseen_ops``: touched since the handler last looked, only queried
    when the touch counter says there are some.
    """
    return conn.execute(
        f"""
        WITH ex AS (SELECT {EXECUTION_COLUMNS} FROM durable_execution WHERE arn = %(arn)s)
        SELECT ex.*,
            (SELECT coalesce(jsonb_agg(o.doc), '[]'::jsonb) FROM jsonb_array_elements_text(%(ids)s) AS r(op_id),
              LATERAL (SELECT doc FROM durable_operation WHERE execution_id = ex.id AND op_id = r.op_id LIMIT 1) AS o
            ) AS referenced_ops,
            CASE WHEN ex.op_seq > ex.seen_seq THEN
                (SELECT coalesce(jsonb_agg(o.doc ORDER BY o.ordinal), '[]'::jsonb) FROM durable_operation o
                  WHERE o.execution_id = ex.id AND o.touch_seq > ex.seen_seq)
            ELSE '[]'::jsonb END AS unseen_ops,
            EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = ex.id AND t.due_at <= %(now)s) AS timers_due
        FROM ex
        """,
        {"arn": arn, "ids": Jsonb(op_ids), "now": now},
    ).fetchone()


def execution_with_invocation(
    conn: psycopg.Connection, execution_id: int, seq: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The execution and one of its invocations, in one statement and without a lock."""
    fields = ", ".join(f"i.{name} AS inv_{name}" for name in _INVOCATION_FIELDS)
    row = conn.execute(
        f"""SELECT {_E_COLUMNS}, i.id IS NOT NULL AS inv_found, {fields}
            FROM durable_execution e LEFT JOIN durable_invocation i ON i.execution_id = e.id AND i.seq = %s
            WHERE e.id = %s""",
        (seq, execution_id),
    ).fetchone()
    if row is None:
        return None, None
    invocation = {name: row.pop(f"inv_{name}") for name in _INVOCATION_FIELDS}
    return row, invocation if row.pop("inv_found") else None


def unclaimed_execution(conn: psycopg.Connection, execution_id: int, generation: int | None) -> dict[str, Any] | None:
    """Why a claim matched nothing, in one statement without a lock: the execution row plus
    ``claimable`` (running, owes an invocation, none running, and the message not superseded
    by a newer re-dispatch) and ``function_found``. None if the execution is gone."""
    return conn.execute(
        f"""SELECT {_E_COLUMNS},
               e.status = 'RUNNING' AND NOT e.running AND e.needs_invoke
                   AND e.redispatches <= coalesce(%s, e.redispatches) AS claimable,
               EXISTS (SELECT 1 FROM durable_function f WHERE f.name = e.function_name) AS function_found
            FROM durable_execution e WHERE e.id = %s""",
        (generation, execution_id),
    ).fetchone()


def callback_heartbeat_timeout(conn: psycopg.Connection, execution_id: int, op_id: str) -> int | None:
    """The HeartbeatTimeout the callback operation ``op_id`` was started with, if any."""
    started = conn.execute(
        """SELECT doc FROM durable_event WHERE execution_id = %s AND op_id = %s AND event_type = 'CallbackStarted'
           ORDER BY event_id LIMIT 1""",
        (execution_id, op_id),
    ).fetchone()
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
)


def purge_expired(conn: psycopg.Connection, limit: int) -> int:
    """Delete executions whose retention period has passed since they ended, with every row of
    theirs; skip rows another purge holds. Return how many were deleted."""
    rows = conn.execute(
        """SELECT id FROM durable_execution WHERE ended_at IS NOT NULL
           AND ended_at < now() - make_interval(days => retention_days) LIMIT %s FOR UPDATE SKIP LOCKED""",
        (limit,),
    ).fetchall()
    ids = [row["id"] for row in rows]
    if ids:
        for table in RETAINED_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE execution_id = ANY(%s)", (ids,))
        conn.execute("DELETE FROM durable_execution WHERE id = ANY(%s)", (ids,))
    return len(ids)
