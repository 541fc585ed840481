-- Executions (durable_execution). Every read of an execution returns the same columns, in the
-- same order: the ones the engine uses, and not the quarantine's, which only the dashboard and
-- the background loops read.

-- name: insert_started_execution
-- A start in one statement: the row (already asking to be invoked), its EXECUTION operation,
-- ExecutionStarted and the execution-timeout timer. One statement is one round trip and, on an
-- autocommit connection, one transaction. ON CONFLICT DO NOTHING returns no row when the
-- (function, name) pair is taken, and then the other inserts, which read the new row, write
-- nothing. A timeout due before the scheduler next looks wakes it at commit.
WITH new_execution AS (
    INSERT INTO durable_execution (arn, function_name, name, input, status, started_at,
        execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
        running, needs_invoke, invoke_reason, dispatched_at, consecutive_failures, op_seq, seen_seq,
        event_seq, parent_arn, parent_op_id, counters)
    VALUES (%(arn)s, %(function_name)s, %(name)s, %(input)s, 'RUNNING', %(started_at)s,
        %(execution_timeout)s, %(retention_days)s, %(time_scale)s, %(invocation_type)s, 0, 0,
        false, true, 'start', %(started_at)s, 0, 1, 0, 1, %(parent_arn)s, %(parent_op_id)s, '{}')
    ON CONFLICT (function_name, name) DO NOTHING
    RETURNING id, arn, function_name, name, input, status, result, error, started_at, ended_at,
        execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
        running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
        op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause),
execution_operation AS (
    INSERT INTO durable_operation (execution_id, op_id, ordinal, type, status, attempt, touch_seq,
        started_at, doc)
    SELECT new_execution.id, %(op_id)s, 1, 'EXECUTION', %(op_status)s, 0, 1, %(op_started_at)s, %(op_doc)s
    FROM new_execution),
started_event AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, doc)
    SELECT new_execution.id, 1, %(event_type)s, %(started_at)s, %(op_id)s, %(event_doc)s FROM new_execution),
timeout_timer AS (
    INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
    SELECT new_execution.id, 'execution_timeout', '', %(timeout_at)s FROM new_execution)
SELECT new_execution.*, CASE WHEN %(timeout_at)s < %(started_at)s + %(horizon)s
    THEN pg_notify('durable_timers', new_execution.id::text) END AS notified
FROM new_execution

-- name: execution_by_name
-- The start's idempotency check: the (function_name, name) unique index answers it.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution WHERE function_name = %(function_name)s AND name = %(name)s

-- name: execution_by_arn
-- A read without a lock, for the API's reads and for checks a later guarded write repeats.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution WHERE arn = %(arn)s

-- name: execution_by_arn_for_update
-- The same, locked until the caller's transaction ends: a separate statement, not a suffix
-- added to the one above, so that each keeps one text and its own prepared plan.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution WHERE arn = %(arn)s FOR UPDATE

-- name: execution_by_id
-- As execution_by_arn, by primary key: the background loops and the worker know only the id.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution WHERE id = %(id)s

-- name: execution_by_id_for_update
-- As execution_by_id, locked until the caller's transaction ends.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution WHERE id = %(id)s FOR UPDATE

-- name: list_function_executions_newest_first
-- ListDurableExecutionsByFunction. Every filter is a parameter, NULL when not given, so that one
-- statement serves every combination. The range conditions on (started_at, id) are never
-- switched off by an OR: a missing bound becomes an infinite one (COALESCE), so that the plan
-- the server keeps for this prepared statement still walks the (function_name, started_at)
-- index from the marker, however deep the page. The marker is the (started_at, id) of the
-- previous page's last row; without one, no finite started_at reaches the infinite bound, so
-- the id beside it (0) is never compared.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution
WHERE function_name = %(function)s
    AND started_at >= coalesce(%(after)s::timestamptz, '-infinity')
    AND started_at < coalesce(%(before)s::timestamptz, 'infinity')
    AND (started_at, id) < (coalesce(%(m_started)s::timestamptz, 'infinity'),
                            coalesce(%(m_id)s::bigint, 0))
    AND (%(name)s::text IS NULL OR name = %(name)s::text)
    AND (%(statuses)s::text[] IS NULL OR coalesce(pause_state, status) = ANY(%(statuses)s::text[]))
ORDER BY started_at DESC, id DESC LIMIT %(limit)s

-- name: list_function_executions_oldest_first
-- The same with ReverseOrder: the order and the marker's comparison both turn round, which is
-- why it is a second statement rather than a parameter.
SELECT id, arn, function_name, name, input, status, result, error, started_at, ended_at,
    execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq,
    running, lease_until, needs_invoke, invoke_reason, dispatched_at, consecutive_failures,
    op_seq, seen_seq, event_seq, parent_arn, parent_op_id, counters, pending_finish, pause_state, pause
FROM durable_execution
WHERE function_name = %(function)s
    AND started_at >= coalesce(%(after)s::timestamptz, '-infinity')
    AND started_at < coalesce(%(before)s::timestamptz, 'infinity')
    AND (started_at, id) > (coalesce(%(m_started)s::timestamptz, '-infinity'),
                            coalesce(%(m_id)s::bigint, 0))
    AND (%(name)s::text IS NULL OR name = %(name)s::text)
    AND (%(statuses)s::text[] IS NULL OR coalesce(pause_state, status) = ANY(%(statuses)s::text[]))
ORDER BY started_at ASC, id ASC LIMIT %(limit)s

-- name: has_pending_work
-- machine.has_pending_work in SQL, so that a PENDING output is checked without loading every
-- operation: the caller passes the (type, status) pairs that mean work is pending as
-- 'TYPE:STATUS' strings.
SELECT EXISTS (SELECT 1 FROM durable_operation
    WHERE execution_id = %(execution_id)s AND type || ':' || status = ANY(%(pairs)s)) AS pending

-- name: update_execution_columns
-- A template, not a statement: the service sets a different set of columns at each call site,
-- so {assignments} is composed with psycopg.sql (quoted identifiers and named placeholders),
-- never by editing this text.
UPDATE durable_execution SET {assignments} WHERE id = %(_id)s
