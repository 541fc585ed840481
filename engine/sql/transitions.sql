-- Writing what the state machine decided: a transition's operations, history events, timers
-- and the execution row's counters, in one statement (one round trip). Rows travel as one JSON
-- array per table, which is cheaper to send than an array per column.
--
-- Every sub-statement of a WITH runs to completion whether or not the final SELECT reads it;
-- only guarded_execution (did the guard hold?) and set_timers (is a NOTIFY needed?) are read.
-- In the guarded variants the other sub-statements write only if guarded_execution updated
-- its row, so a stale writer writes nothing at all.
--
-- Three variants, one per writer, rather than one statement patched at run time: each keeps one
-- text, hence one prepared plan, and its guard can be read as it runs.

-- name: write_transition
-- Unguarded: the caller holds the execution's row lock (the service's own writes).
WITH guarded_execution AS (
    UPDATE durable_execution SET op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
        token_seq = %(token_seq)s, counters = %(counters)s
    WHERE id = %(id)s RETURNING 1),
upserted_operations AS (
    INSERT INTO durable_operation (execution_id, op_id, ordinal, parent_id, name, type, sub_type, status,
        attempt, touch_seq, started_at, ended_at, callback_id, doc)
    SELECT %(id)s, x.op_id, x.seq, x.parent_id, x.name, x.type, x.sub_type, x.status, x.attempt, x.seq,
        x.started_at, x.ended_at, x.callback_id, x.doc
    FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, parent_id text, name text, type text,
        sub_type text, status text, attempt int, started_at timestamptz, ended_at timestamptz,
        callback_id text, doc jsonb)
    ON CONFLICT (execution_id, op_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        touch_seq = EXCLUDED.touch_seq, ended_at = EXCLUDED.ended_at,
        callback_id = COALESCE(durable_operation.callback_id, EXCLUDED.callback_id), doc = EXCLUDED.doc),
recorded_events AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, %(inv)s, x.doc
    FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, doc jsonb)),
cancelled_timers AS (
    DELETE FROM durable_timer t USING jsonb_to_recordset(%(cancel)s) AS c(kind text, op_id text)
    WHERE t.execution_id = %(id)s AND t.kind = c.kind AND t.op_id = c.op_id),
set_timers AS (
    INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
    SELECT %(id)s, x.kind, x.op_id, x.due_at
    FROM jsonb_to_recordset(%(timers)s) AS x(kind text, op_id text, due_at timestamptz)
    ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at
    RETURNING kind, due_at)
SELECT CASE WHEN EXISTS (SELECT 1 FROM set_timers WHERE due_at < %(now)s + %(horizon)s)
        THEN pg_notify('durable_timers', %(id)s::text) END AS notified,
    EXISTS (SELECT 1 FROM guarded_execution) AS written,
    EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s) AS timers_due

-- name: write_transition_guarded
-- By a running invocation, without a lock taken beforehand: written only if the execution is
-- still as the invocation last saw it (token, op and event sequence numbers), still RUNNING,
-- not finishing, and still running an invocation. The scheduler holds back the invocation's
-- own timers for RUNNING_GRACE, no longer than it ever sleeps, so those need no NOTIFY.
-- Unless durable, the statement's own transaction commits without waiting for the WAL flush
-- (set_config's local setting lasts until that commit, so the session keeps its own).
WITH guarded_execution AS (
    UPDATE durable_execution SET op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
        token_seq = %(token_seq)s, counters = %(counters)s
    WHERE id = %(id)s AND token_seq = %(guard_token_seq)s AND op_seq = %(guard_op_seq)s
        AND event_seq = %(guard_event_seq)s AND (status = 'RUNNING') IS TRUE AND pending_finish IS NULL AND running
        AND pause_state IS NULL
    RETURNING 1),
upserted_operations AS (
    INSERT INTO durable_operation (execution_id, op_id, ordinal, parent_id, name, type, sub_type, status,
        attempt, touch_seq, started_at, ended_at, callback_id, doc)
    SELECT %(id)s, x.op_id, x.seq, x.parent_id, x.name, x.type, x.sub_type, x.status, x.attempt, x.seq,
        x.started_at, x.ended_at, x.callback_id, x.doc
    FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, parent_id text, name text, type text,
        sub_type text, status text, attempt int, started_at timestamptz, ended_at timestamptz,
        callback_id text, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)
    ON CONFLICT (execution_id, op_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        touch_seq = EXCLUDED.touch_seq, ended_at = EXCLUDED.ended_at,
        callback_id = COALESCE(durable_operation.callback_id, EXCLUDED.callback_id), doc = EXCLUDED.doc),
recorded_events AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, %(inv)s, x.doc
    FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)),
cancelled_timers AS (
    DELETE FROM durable_timer t USING jsonb_to_recordset(%(cancel)s) AS c(kind text, op_id text)
    WHERE t.execution_id = %(id)s AND t.kind = c.kind AND t.op_id = c.op_id
        AND EXISTS (SELECT 1 FROM guarded_execution)),
set_timers AS (
    INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
    SELECT %(id)s, x.kind, x.op_id, x.due_at
    FROM jsonb_to_recordset(%(timers)s) AS x(kind text, op_id text, due_at timestamptz)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)
    ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at
    RETURNING kind, due_at)
SELECT CASE WHEN NOT %(durable)s THEN set_config('synchronous_commit', 'off', true) END AS commit_mode,
    CASE WHEN EXISTS (SELECT 1 FROM set_timers WHERE due_at < %(now)s + %(horizon)s
            AND kind <> ALL(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat']))
        THEN pg_notify('durable_timers', %(id)s::text) END AS notified,
    EXISTS (SELECT 1 FROM guarded_execution) AS written,
    EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s) AS timers_due

-- name: write_transition_waking
-- By the service (a callback's answer), without a lock: written only if the execution is as the
-- service read it, running an invocation or not (the guard holds invocation_seq and running
-- too). The handler must then run again: the row asks to be invoked for reason wake, and is
-- dispatched now unless an invocation is running (it is dispatched when that one ends).
WITH guarded_execution AS (
    UPDATE durable_execution SET op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
        token_seq = %(token_seq)s, counters = %(counters)s,
        needs_invoke = true, invoke_reason = %(wake)s,
        dispatched_at = CASE WHEN running OR pause_state IS NOT NULL THEN dispatched_at ELSE %(now)s END
    WHERE id = %(id)s AND token_seq = %(guard_token_seq)s AND op_seq = %(guard_op_seq)s
        AND event_seq = %(guard_event_seq)s AND (status = 'RUNNING') IS TRUE AND pending_finish IS NULL
        AND invocation_seq = %(guard_invocation_seq)s AND running = %(guard_running)s
        AND pause_state IS NOT DISTINCT FROM %(guard_pause_state)s
    RETURNING 1),
upserted_operations AS (
    INSERT INTO durable_operation (execution_id, op_id, ordinal, parent_id, name, type, sub_type, status,
        attempt, touch_seq, started_at, ended_at, callback_id, doc)
    SELECT %(id)s, x.op_id, x.seq, x.parent_id, x.name, x.type, x.sub_type, x.status, x.attempt, x.seq,
        x.started_at, x.ended_at, x.callback_id, x.doc
    FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, parent_id text, name text, type text,
        sub_type text, status text, attempt int, started_at timestamptz, ended_at timestamptz,
        callback_id text, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)
    ON CONFLICT (execution_id, op_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        touch_seq = EXCLUDED.touch_seq, ended_at = EXCLUDED.ended_at,
        callback_id = COALESCE(durable_operation.callback_id, EXCLUDED.callback_id), doc = EXCLUDED.doc),
recorded_events AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, %(inv)s, x.doc
    FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)),
cancelled_timers AS (
    DELETE FROM durable_timer t USING jsonb_to_recordset(%(cancel)s) AS c(kind text, op_id text)
    WHERE t.execution_id = %(id)s AND t.kind = c.kind AND t.op_id = c.op_id
        AND EXISTS (SELECT 1 FROM guarded_execution)),
set_timers AS (
    INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
    SELECT %(id)s, x.kind, x.op_id, x.due_at
    FROM jsonb_to_recordset(%(timers)s) AS x(kind text, op_id text, due_at timestamptz)
    WHERE EXISTS (SELECT 1 FROM guarded_execution)
    ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at
    RETURNING kind, due_at)
SELECT CASE WHEN EXISTS (SELECT 1 FROM set_timers WHERE due_at < %(now)s + %(horizon)s)
        THEN pg_notify('durable_timers', %(id)s::text) END AS notified,
    EXISTS (SELECT 1 FROM guarded_execution) AS written,
    EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s) AS timers_due

-- name: read_checkpoint_snapshot
-- Read what a checkpoint needs, in one statement and without a lock (the write that follows is
-- guarded by the row's sequence numbers, which says whether this read is still exact): the row,
-- the batch's operations and their parents (one unique-index lookup each: op_id = ANY(...) gets a plan that
-- reads every operation of the execution while the table has no statistics yet, which made a
-- step cost grow with the steps before it; LIMIT 1 keeps the planner from flattening the lookup
-- into that scan. The ids come as a JSON array, not a SQL array, so that the server keeps its
-- generic plan of this prepared statement instead of planning it again at every call, about
-- 0.2 ms), the operations the handler has not seen (only queried when the touch counter says
-- there are some) and whether a timer is due.
WITH snapshot AS (
    SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
        execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
        running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
        op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
    FROM durable_execution WHERE arn = %(arn)s)
SELECT snapshot.*,
    (SELECT coalesce(jsonb_agg(o.doc), '[]'::jsonb) FROM jsonb_array_elements_text(%(ids)s) AS r(op_id),
      LATERAL (SELECT doc FROM durable_operation
               WHERE execution_id = snapshot.id AND op_id = r.op_id LIMIT 1) AS o
    ) AS referenced_ops,
    CASE WHEN snapshot.op_seq > snapshot.seen_seq THEN
        (SELECT coalesce(jsonb_agg(o.doc ORDER BY o.ordinal), '[]'::jsonb) FROM durable_operation o
          WHERE o.execution_id = snapshot.id AND o.touch_seq > snapshot.seen_seq)
    ELSE '[]'::jsonb END AS unseen_ops,
    EXISTS (SELECT 1 FROM durable_timer t
            WHERE t.execution_id = snapshot.id AND t.due_at <= %(now)s) AS timers_due
FROM snapshot

-- name: lock_if_unchanged
-- Open a duty's transaction: lock the execution row only if it is still as the duty's snapshot
-- has it, and return the row as it is now; no row means another writer changed it in between,
-- so the duty reads again and retries. The sequence numbers cover every operation, event and
-- token change; the flags are what the duties decide on. The no-op SET is what makes this an
-- UPDATE: it takes the row lock in the same statement.
UPDATE durable_execution SET token_seq = token_seq
WHERE id = %(id)s AND (status = %(status)s) IS TRUE AND token_seq = %(token_seq)s AND op_seq = %(op_seq)s
    AND event_seq = %(event_seq)s AND invocation_seq = %(invocation_seq)s AND running = %(running)s
    AND needs_invoke = %(needs_invoke)s AND (pending_finish IS NULL) = %(no_pending_finish)s
    AND pause_state IS NOT DISTINCT FROM %(pause_state)s
RETURNING id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
