-- Callbacks are operations with a callback_id; an answer (success, failure, heartbeat) names
-- only that id, so these statements find the execution from it.

-- name: execution_by_callback
-- The execution a callback id belongs to, read without a lock, plus the callback's operation document and the function's timeout
-- (NULL if the function was deleted): what an optimistic answer needs in one read.
SELECT e.id, e.arn, e.function_name, e.name, e.input, e.status, e.result, e.error, e.started_at, e.ended_at,
    e.execution_timeout, e.retention_days, e.time_scale, e.invocation_type, e.invocation_seq, e.token_seq,
    e.running, e.lease_until, e.needs_invoke, e.invoke_reason, e.dispatched_at, e.consecutive_failures,
    e.op_seq, e.seen_seq, e.event_seq, e.parent_arn, e.parent_op_id, e.counters, e.pending_finish, e.pause_state, e.pause,
    c.doc AS callback_op, f.timeout AS fn_timeout
FROM durable_operation c JOIN durable_execution e ON e.id = c.execution_id
LEFT JOIN durable_function f ON f.name = e.function_name
WHERE c.callback_id = %(callback_id)s

-- name: callback_heartbeat_timeout
-- The HeartbeatTimeout a callback operation was started with is only in its CallbackStarted event.
SELECT doc FROM durable_event
WHERE execution_id = %(execution_id)s AND op_id = %(op_id)s AND event_type = 'CallbackStarted'
ORDER BY event_id LIMIT 1
