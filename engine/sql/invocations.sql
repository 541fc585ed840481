-- Invocations (durable_invocation): each run of the handler for an execution, numbered by
-- the execution's invocation_seq. An execution runs at most one at a time (its running flag and
-- lease_until), and owes one when needs_invoke is set.

-- name: insert_invocation
-- The locked claim's record of a new invocation (claim_invocation writes it in the same
-- statement as the lease).
INSERT INTO durable_invocation (execution_id, seq, request_id, reason, started_at, deadline, worker, pid,
    dispatched_at)
VALUES (%(execution_id)s, %(seq)s, %(request_id)s, %(reason)s, %(started_at)s, %(deadline)s, %(worker)s, %(pid)s,
    %(dispatched_at)s)

-- name: claim_invocation
-- Take the invocation lease and record the invocation in one statement. Only an execution that
-- is running, owes an invocation and has none running is claimed; of concurrent claims the row
-- lock lets one through and the others match nothing; a message older than the latest
-- re-dispatch (generation) matches nothing either. The answer carries the function's fn_*
-- columns, the armed faults and the operations, so the worker needs no second read. The
-- operations come from the statement's snapshot: if the claim waited for another writer's lock,
-- ops_seq (their highest touch_seq) falls short of the claimed row's op_seq and the caller reads
-- them again.
WITH claimed AS (
    UPDATE durable_execution e SET invocation_seq = e.invocation_seq + 1, running = true,
        needs_invoke = false, seen_seq = e.op_seq,
        lease_until = %(now)s + make_interval(secs => f.timeout) + %(lease_grace)s,
        counters = jsonb_set(coalesce(e.counters, '{}'), '{invocations}',
            to_jsonb(coalesce((e.counters ->> 'invocations')::int, 0) + 1))
    FROM durable_function f
    WHERE e.id = %(execution_id)s AND (e.status = 'RUNNING') IS TRUE AND NOT e.running AND e.needs_invoke
        AND e.pause_state IS NULL AND f.name = e.function_name AND e.redispatches <= coalesce(%(generation)s, e.redispatches)
    RETURNING e.id, e.arn, e.function_name, e.name, e.input, e.status, e.result, e.error, e.started_at,
        e.ended_at, e.execution_timeout, e.retention_days, e.time_scale, e.invocation_type, e.invocation_seq,
        e.token_seq, e.running, e.lease_until, e.needs_invoke, e.invoke_reason, e.dispatched_at,
        e.consecutive_failures, e.op_seq, e.seen_seq, e.event_seq, e.parent_arn, e.parent_op_id, e.counters,
        e.pending_finish, e.pause_state, e.pause,
        f.name AS fn_name, f.handler AS fn_handler, f.timeout AS fn_timeout,
        f.environment AS fn_environment, f.runtime AS fn_runtime, f.code_sha256 AS fn_code_sha256,
        %(now)s + make_interval(secs => f.timeout) AS deadline),
new_invocation AS (
    INSERT INTO durable_invocation (execution_id, seq, request_id, reason, started_at, deadline, worker, pid,
        dispatched_at)
    SELECT claimed.id, claimed.invocation_seq, %(request_id)s, claimed.invoke_reason, %(now)s, claimed.deadline,
        %(worker)s, %(pid)s, claimed.dispatched_at
    FROM claimed)
SELECT claimed.*, operations.ops, operations.ops_seq,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'kind', d.kind,
                'step_name', d.step_name, 'phase', d.phase) ORDER BY d.id), '[]'::jsonb)
     FROM durable_fault d WHERE d.execution_id = claimed.id AND d.fired_at IS NULL
        AND d.phase IN ('body_start', 'after_body')) AS faults
FROM claimed, LATERAL (
    SELECT coalesce(json_agg(x.doc ORDER BY x.ordinal), '[]'::json) AS ops, max(x.touch_seq) AS ops_seq
    FROM durable_operation x WHERE x.execution_id = claimed.id) operations

-- name: unclaimed_execution
-- Why a claim matched nothing, in one statement without a lock: the execution row plus claimable
-- (running, owes an invocation, none running, and the message not superseded by a newer
-- re-dispatch) and function_found.
SELECT e.id, e.arn, e.function_name, e.name, e.input, e.status, e.result, e.error, e.started_at, e.ended_at,
    e.execution_timeout, e.retention_days, e.time_scale, e.invocation_type, e.invocation_seq, e.token_seq,
    e.running, e.lease_until, e.needs_invoke, e.invoke_reason, e.dispatched_at, e.consecutive_failures,
    e.op_seq, e.seen_seq, e.event_seq, e.parent_arn, e.parent_op_id, e.counters, e.pending_finish, e.pause_state, e.pause,
    e.status = 'RUNNING' AND NOT e.running AND e.needs_invoke AND e.pause_state IS NULL
        AND e.redispatches <= coalesce(%(generation)s, e.redispatches) AS claimable,
    EXISTS (SELECT 1 FROM durable_function f WHERE f.name = e.function_name) AS function_found
FROM durable_execution e WHERE e.id = %(execution_id)s

-- name: get_invocation
SELECT id, execution_id, seq, request_id, reason, started_at, ended_at, deadline, outcome, error, worker, pid,
    dispatched_at
FROM durable_invocation WHERE execution_id = %(execution_id)s AND seq = %(seq)s

-- name: execution_with_invocation
-- The execution and one of its invocations in one round trip, without a lock; the invocation's
-- columns come prefixed inv_ (engine.rows.Invocation's fields) and inv_found tells a missing
-- invocation from NULL columns.
SELECT e.id, e.arn, e.function_name, e.name, e.input, e.status, e.result, e.error, e.started_at, e.ended_at,
    e.execution_timeout, e.retention_days, e.time_scale, e.invocation_type, e.invocation_seq, e.token_seq,
    e.running, e.lease_until, e.needs_invoke, e.invoke_reason, e.dispatched_at, e.consecutive_failures,
    e.op_seq, e.seen_seq, e.event_seq, e.parent_arn, e.parent_op_id, e.counters, e.pending_finish, e.pause_state, e.pause,
    i.id IS NOT NULL AS inv_found, i.id AS inv_id, i.execution_id AS inv_execution_id, i.seq AS inv_seq,
    i.request_id AS inv_request_id, i.reason AS inv_reason, i.started_at AS inv_started_at,
    i.ended_at AS inv_ended_at, i.deadline AS inv_deadline, i.outcome AS inv_outcome, i.error AS inv_error,
    i.worker AS inv_worker, i.pid AS inv_pid, i.dispatched_at AS inv_dispatched_at
FROM durable_execution e LEFT JOIN durable_invocation i ON i.execution_id = e.id AND i.seq = %(seq)s
WHERE e.id = %(execution_id)s

-- name: invocation_run_by
-- The execution's invocation still running in process pid of host worker, if any: how a worker
-- process that died is matched to the invocation it left behind.
SELECT seq FROM durable_invocation
WHERE execution_id = %(execution_id)s AND worker = %(worker)s AND pid = %(pid)s AND ended_at IS NULL
ORDER BY seq DESC LIMIT 1

-- name: running_invocations
-- The sweeper's round: running invocations, the lease nearest its end first; quarantined
-- executions are left alone.
SELECT i.id, i.execution_id, i.seq, i.request_id, i.reason, i.started_at, i.ended_at, i.deadline, i.outcome,
    i.error, i.worker, i.pid, i.dispatched_at
FROM durable_execution e JOIN durable_invocation i ON i.execution_id = e.id AND i.seq = e.invocation_seq
WHERE e.running AND e.quarantined_at IS NULL ORDER BY e.lease_until LIMIT %(limit)s

-- name: end_invocation
-- Close an invocation under the caller's lock: its InvocationCompleted event, its outcome, and
-- the step body runs and log lines its journal saw, in one statement.
WITH completed_event AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    VALUES (%(id)s, %(event_id)s, 'InvocationCompleted', %(now)s, NULL, %(seq)s, %(event)s)),
closed_invocation AS (
    UPDATE durable_invocation SET ended_at = %(now)s, outcome = %(outcome)s, error = %(error)s
    WHERE execution_id = %(id)s AND seq = %(seq)s AND ended_at IS NULL),
recorded_body_runs AS (
    INSERT INTO durable_body_run (execution_id, op_id, name, invocation_seq, attempt, started_at, ended_at, outcome)
    SELECT %(id)s, x.op_id, x.name, %(seq)s, x.attempt, x.started_at, x.ended_at, x.outcome
    FROM jsonb_to_recordset(%(runs)s) AS x(op_id text, name text, attempt int, started_at timestamptz,
        ended_at timestamptz, outcome text)),
recorded_log_lines AS (
    INSERT INTO durable_log (execution_id, invocation_seq, at, level, logger, message, op_id)
    SELECT %(id)s, %(seq)s, x.at, x.level, x.logger, x.message, x.op_id
    FROM jsonb_to_recordset(%(logs)s) AS x(at timestamptz, level text, logger text, message text, op_id text))
SELECT 1

-- name: end_invocation_guarded
-- End invocation seq without a lock taken beforehand, in one statement, if the execution is
-- still as the invocation last wrote it (the guard_* sequence numbers) and still running it.
-- finished: the execution ends with this invocation; otherwise it suspends. fired: the WAIT
-- operations this ending completes, because their timers came due while it ran.
-- The two timer conditions are the machine's rule for a suspension: it is refused while a
-- timer of the execution is due that the ending does not fire (the handler must see it first),
-- and every WAIT it fires must still have its timer due (no one else fired it meanwhile).
-- Everything after ended_execution writes only if that update matched.
WITH due_timers AS (
    SELECT t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[]) AS fired_by_this_ending
    FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s),
ended_execution AS (
    UPDATE durable_execution SET status = %(status)s, result = %(result)s, error = NULL,
        ended_at = %(ended_at)s, running = false, lease_until = NULL,
        needs_invoke = %(wake)s::text IS NOT NULL, invoke_reason = COALESCE(%(wake)s, invoke_reason),
        dispatched_at = CASE WHEN %(wake)s::text IS NULL THEN dispatched_at ELSE %(now)s END,
        consecutive_failures = 0, op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
        token_seq = %(token_seq)s, counters = %(counters)s
    WHERE id = %(id)s AND invocation_seq = %(seq)s AND token_seq = %(guard_token_seq)s
        AND op_seq = %(guard_op_seq)s AND event_seq = %(guard_event_seq)s
        AND (status = 'RUNNING') IS TRUE AND running AND pending_finish IS NULL AND pause_state IS NULL
        AND (%(finished)s OR NOT EXISTS (SELECT 1 FROM due_timers WHERE NOT fired_by_this_ending))
        AND (SELECT count(*) FROM due_timers WHERE fired_by_this_ending) = cardinality(%(fired)s::text[])
    RETURNING 1),
closed_invocation AS (
    UPDATE durable_invocation SET ended_at = %(now)s, outcome = %(outcome)s
    WHERE execution_id = %(id)s AND seq = %(seq)s AND ended_at IS NULL
        AND EXISTS (SELECT 1 FROM ended_execution)),
updated_operations AS (
    UPDATE durable_operation d SET status = x.status, touch_seq = x.seq, ended_at = x.ended_at, doc = x.doc
    FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, status text, ended_at timestamptz, doc jsonb)
    WHERE d.execution_id = %(id)s AND d.op_id = x.op_id AND EXISTS (SELECT 1 FROM ended_execution)),
recorded_events AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, x.inv, x.doc
    FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, inv int, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM ended_execution)),
recorded_body_runs AS (
    INSERT INTO durable_body_run (execution_id, op_id, name, invocation_seq, attempt, started_at, ended_at, outcome)
    SELECT %(id)s, x.op_id, x.name, %(seq)s, x.attempt, x.started_at, x.ended_at, x.outcome
    FROM jsonb_to_recordset(%(runs)s) AS x(op_id text, name text, attempt int, started_at timestamptz,
        ended_at timestamptz, outcome text)
    WHERE EXISTS (SELECT 1 FROM ended_execution)),
recorded_log_lines AS (
    INSERT INTO durable_log (execution_id, invocation_seq, at, level, logger, message, op_id)
    SELECT %(id)s, %(seq)s, x.at, x.level, x.logger, x.message, x.op_id
    FROM jsonb_to_recordset(%(logs)s) AS x(at timestamptz, level text, logger text, message text, op_id text)
    WHERE EXISTS (SELECT 1 FROM ended_execution)),
dropped_timers AS (
    -- a finish drops every timer; a suspension only the timers of the WAITs it fires
    DELETE FROM durable_timer t WHERE t.execution_id = %(id)s
        AND (%(finished)s OR t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[]))
        AND EXISTS (SELECT 1 FROM ended_execution))
SELECT EXISTS (SELECT 1 FROM ended_execution) AS written,
    (SELECT f.timeout FROM durable_function f WHERE f.name = %(function_name)s) AS fn_timeout,
    CASE WHEN NOT EXISTS (SELECT 1 FROM ended_execution) THEN NULL
        WHEN %(finished)s THEN pg_notify('durable_done', %(arn)s)
        -- the scheduler held back this execution's own timers while it ran: look again at those left
        WHEN EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s
            AND t.kind = ANY(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat'])
            AND NOT (t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[])))
        THEN pg_notify('durable_timers', %(id)s::text) END AS notified
