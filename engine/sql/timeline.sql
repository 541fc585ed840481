-- The dashboard's timeline of one execution (engine.timeline): it answers in a fixed number of
-- statements whatever the execution's size. Only a lean outline of every operation is read
-- whole; details are read for the drawn window only, and counters are aggregated here.

-- name: timeline_execution
-- The execution and what is counted over its whole history: one pass over its events,
-- index-only counts of the journal tables, and the few faults. ``pauses`` lists the execution's
-- ExecutionPaused and ExecutionResumed events in order (type and time): the pause windows.
SELECT x.id, x.arn, x.function_name, x.name, x.input, x.status, x.result, x.error, x.started_at, x.ended_at,
    x.execution_timeout, x.retention_days, x.time_scale, x.invocation_type, x.invocation_seq, x.token_seq,
    x.running, x.lease_until, x.needs_invoke, x.invoke_reason, x.dispatched_at, x.consecutive_failures,
    x.op_seq, x.seen_seq, x.event_seq, x.parent_arn, x.parent_op_id, x.counters, x.pending_finish, x.pause_state, x.pause,
    history.closed_attempts, history.failed_attempts, history.last_event_id, history.pauses,
    (SELECT count(*) FROM durable_body_run b WHERE b.execution_id = x.id) AS body_run_count,
    (SELECT count(*) FROM durable_effect ef WHERE ef.execution_id = x.id) AS effect_count,
    (SELECT count(*) FROM durable_effect ef WHERE ef.execution_id = x.id AND ef.duplicate) AS duplicate_count,
    (SELECT coalesce(json_agg(f ORDER BY f.armed_at), '[]') FROM durable_fault f
        WHERE f.execution_id = x.id) AS faults
FROM durable_execution x
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE event_type IN ('StepSucceeded', 'StepFailed')) AS closed_attempts,
        count(*) FILTER (WHERE event_type = 'StepFailed') AS failed_attempts,
        max(event_id) AS last_event_id,
        coalesce(jsonb_agg(jsonb_build_object('type', event_type, 'at', timestamp) ORDER BY event_id)
            FILTER (WHERE event_type IN ('ExecutionPaused', 'ExecutionResumed')), '[]') AS pauses
    FROM durable_event WHERE execution_id = x.id
) history
WHERE x.arn = %(arn)s

-- name: timeline_invocations
SELECT seq, request_id, reason, started_at, ended_at, deadline, outcome, error, worker, pid,
       dispatched_at
FROM durable_invocation WHERE execution_id = %(execution_id)s ORDER BY seq

-- name: timeline_invocation_spans
-- What the replay count of one operation needs: when each invocation ran.
SELECT seq, request_id, started_at, ended_at FROM durable_invocation
WHERE execution_id = %(execution_id)s ORDER BY seq

-- name: operation_doc_with_child_count
SELECT doc, (SELECT count(*) FROM durable_operation c
             WHERE c.execution_id = o.execution_id AND c.parent_id = o.op_id) AS children
FROM durable_operation o WHERE execution_id = %(execution_id)s AND op_id = %(op_id)s

-- name: operation_events
SELECT event_id, event_type, timestamp, invocation_seq, doc FROM durable_event
WHERE execution_id = %(execution_id)s AND op_id = %(op_id)s ORDER BY event_id LIMIT %(limit)s

-- name: operation_ancestry
-- The operation and its enclosing contexts, innermost first; level < 50 bounds the walk should
-- a parent chain ever loop.
WITH RECURSIVE chain AS (
    SELECT op_id, parent_id, type, status, ended_at, 0 AS level FROM durable_operation
    WHERE execution_id = %(ex)s AND op_id = %(op)s AND type <> 'EXECUTION'
    UNION ALL
    SELECT o.op_id, o.parent_id, o.type, o.status, o.ended_at, chain.level + 1
    FROM durable_operation o JOIN chain ON o.op_id = chain.parent_id
    WHERE o.execution_id = %(ex)s AND o.type <> 'EXECUTION' AND chain.level < 50)
SELECT op_id, parent_id, type, status, ended_at FROM chain ORDER BY level

-- name: operation_outline
-- Four columns of every operation: enough for the tree order, the window and the replays.
SELECT op_id, parent_id, type, status, ended_at FROM durable_operation
WHERE execution_id = %(execution_id)s AND type <> 'EXECUTION' ORDER BY ordinal

-- name: window_operations
-- Only the few document fields the timeline needs are extracted here: parsing every operation
-- document is what made a 10,000-operation timeline slow.
SELECT o.op_id, o.parent_id, o.name, o.type, o.sub_type, o.status, o.attempt, o.started_at,
    o.ended_at, o.callback_id, (o.doc->'WaitDetails'->>'ScheduledEndTimestamp')::bigint AS wait_end_ms,
    t.due_at AS timer_deadline
FROM durable_operation o
LEFT JOIN durable_timer t
    ON t.execution_id = o.execution_id AND t.op_id = o.op_id AND t.kind = 'callback_timeout'
WHERE o.execution_id = %(execution_id)s AND o.op_id = ANY(%(op_ids)s)

-- name: window_events
-- Attempts are derived from these events (each StepStarted ... StepSucceeded or StepFailed pair).
SELECT event_id, event_type, timestamp, op_id, invocation_seq,
    COALESCE(doc->'StepSucceededDetails'->'RetryDetails', doc->'StepFailedDetails'->'RetryDetails')
        AS retry,
    doc->'StepFailedDetails'->'Error'->'Payload' AS error,
    (doc->'CallbackStartedDetails'->>'Timeout')::int AS callback_timeout
FROM durable_event
WHERE execution_id = %(execution_id)s AND op_id = ANY(%(op_ids)s)
    AND event_type IN ('StepStarted', 'StepSucceeded', 'StepFailed', 'CallbackStarted')
ORDER BY event_id

-- name: window_body_runs
SELECT * FROM durable_body_run WHERE execution_id = %(execution_id)s AND op_id = ANY(%(op_ids)s)
ORDER BY started_at

-- name: window_effects
-- Effects outside any operation (op_id NULL) are drawn on the invocations lane.
SELECT * FROM durable_effect WHERE execution_id = %(execution_id)s AND (op_id = ANY(%(op_ids)s) OR op_id IS NULL)
ORDER BY at

-- name: invocation_logs
SELECT invocation_seq, at, level, logger, message, op_id FROM durable_log
WHERE execution_id = %(execution_id)s ORDER BY at, id LIMIT %(limit)s
