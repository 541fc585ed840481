-- Timers (durable_timer): one row per (execution, kind, operation), fired by the scheduler when
-- due. The scheduler looks at least every SCHEDULER_LOOKS_EVERY; a timer due sooner than that
-- wakes it with a NOTIFY on durable_timers, sent when the writer commits.
--
-- ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat'] below is store.OWN_TIMER_KINDS
-- (a test keeps them equal): the kinds a running invocation fires itself, at its next checkpoint
-- or at its end. It is spelled in the statement, not passed, so the planner sees a constant.

-- name: set_timer
-- Setting a timer again moves it: one timer per (execution, kind, operation).
INSERT INTO durable_timer (execution_id, kind, op_id, due_at)
VALUES (%(execution_id)s, %(kind)s, %(op_id)s, %(due)s)
ON CONFLICT (execution_id, kind, op_id) DO UPDATE SET due_at = EXCLUDED.due_at

-- name: wake_scheduler
-- Sent after set_timer only when the timer is due before the scheduler would look anyway.
SELECT pg_notify('durable_timers', %(execution_id)s)

-- name: announce_timers
-- After an invocation ends: wake the scheduler if the execution has timers of the kinds it held
-- back while the invocation ran. LIMIT 1: one NOTIFY is enough.
SELECT pg_notify('durable_timers', %(channel_payload)s) FROM durable_timer
WHERE execution_id = %(execution_id)s AND kind = ANY(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat'])
LIMIT 1

-- name: cancel_all_timers_and_announce_done
-- A finished execution has no timers left; durable_done wakes whoever waits for its end. The
-- DELETE runs as a CTE so that both happen in one round trip.
WITH dropped_timers AS (DELETE FROM durable_timer WHERE execution_id = %(execution_id)s)
SELECT pg_notify('durable_done', %(arn)s)

-- name: take_due_timers
-- Delete and return due timers, oldest first. SKIP LOCKED: a timer another scheduler is
-- already firing is left to it rather than waited for.
DELETE FROM durable_timer WHERE id IN (
    SELECT id FROM durable_timer WHERE due_at <= %(now)s
    ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING execution_id, kind, op_id, due_at

-- name: take_due_execution_timers
-- The same for one execution (the duty firing them holds its row lock): a separate statement,
-- so that its plan can use the execution_id index.
DELETE FROM durable_timer WHERE id IN (
    SELECT id FROM durable_timer WHERE due_at <= %(now)s AND execution_id = %(execution_id)s
    ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING execution_id, kind, op_id, due_at

-- name: due_timer_executions
-- Executions with a due timer, the longest overdue first. A quarantined execution's timers
-- neither fire nor wake the scheduler.
SELECT execution_id FROM durable_timer t
WHERE due_at <= %(now)s
    AND NOT EXISTS (SELECT 1 FROM durable_execution q WHERE q.id = t.execution_id AND q.quarantined_at IS NOT NULL)
GROUP BY execution_id ORDER BY min(due_at) LIMIT %(limit)s

-- name: due_timer_executions_with_grace
-- The same, leaving out an execution whose invocation is running until its own timers have
-- been due for the grace: the invocation fires them itself when it checkpoints or ends,
-- without a second writer waiting on its row lock.
SELECT t.execution_id FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
WHERE t.due_at <= %(now)s
    AND (NOT e.running
        OR t.kind <> ALL(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat'])
        OR t.due_at <= %(now)s - %(grace)s)
    AND e.quarantined_at IS NULL
GROUP BY t.execution_id ORDER BY min(t.due_at) LIMIT %(limit)s

-- name: next_timer_due
-- When due_timer_executions will next find something: the due_at index answers.
SELECT min(due_at) AS due FROM durable_timer t
WHERE NOT EXISTS (SELECT 1 FROM durable_execution q WHERE q.id = t.execution_id AND q.quarantined_at IS NOT NULL)

-- name: next_timer_due_with_grace
-- When due_timer_executions_with_grace will next find something. Only a timer due within the
-- grace can be held back past a later one: those few are joined to their execution; for the
-- rest the due_at index answers, as without a grace.
SELECT least(
    (SELECT min(CASE WHEN e.running AND t.kind = ANY(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat'])
                THEN t.due_at + %(grace)s ELSE t.due_at END)
     FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
     WHERE t.due_at <= %(now)s + %(grace)s AND e.quarantined_at IS NULL),
    (SELECT min(due_at) FROM durable_timer t
     WHERE due_at > %(now)s + %(grace)s
        AND NOT EXISTS (SELECT 1 FROM durable_execution q WHERE q.id = t.execution_id AND q.quarantined_at IS NOT NULL))
) AS due

-- name: listen_for_timers
-- The scheduler's own connection: it sleeps until the next due timer or this channel's NOTIFY.
LISTEN durable_timers

-- name: execution_timeout_due
-- When the execution times out: a pause that holds the timeout reads it before moving it away.
SELECT due_at FROM durable_timer
WHERE execution_id = %(execution_id)s AND kind = 'execution_timeout' AND op_id = ''
