-- The background loops' statements: re-dispatching invocations whose message was lost, and the
-- quarantine that takes an execution out of those loops after repeated failures.

-- name: presumed_lost
-- Executions owing an invocation whose message is presumed lost, with their redispatches. A
-- message is presumed lost when it was never sent (dispatched_at NULL: the broker refused it),
-- when the workers have since started an invocation from a message sent more than after later
-- than it (the queue is read in order: it went past this one), or, whatever the workers do, when
-- it has waited backstop doubled by each re-dispatch so far (at most 64 times backstop), or when
-- it was sent before taken_before (a host was found lost then: it may have taken the message into
-- its prefetch without starting it). A queue that is merely slow, or has no worker reading it, is
-- left alone.
WITH last_consumed AS (SELECT max(dispatched_at) AS consumed FROM durable_invocation)
SELECT e.id, e.redispatches FROM durable_execution e, last_consumed
WHERE e.needs_invoke AND NOT e.running AND e.status = 'RUNNING' AND e.quarantined_at IS NULL AND e.pause_state IS NULL
    AND (e.dispatched_at IS NULL
        OR e.dispatched_at < %(now)s - %(after)s AND last_consumed.consumed > e.dispatched_at + %(after)s
        OR e.dispatched_at < %(now)s - %(backstop)s * power(2, least(e.redispatches, 6))
        OR e.dispatched_at <= %(taken_before)s)
ORDER BY e.dispatched_at NULLS FIRST LIMIT %(limit)s

-- name: mark_redispatched
-- Count one more message sent for the execution's owed invocation; the new redispatches is the
-- message's generation, and only a message of the latest generation may claim.
UPDATE durable_execution e SET redispatches = e.redispatches + 1, dispatched_at = %(now)s
WHERE e.id = %(execution_id)s AND e.needs_invoke AND NOT e.running AND (e.status = 'RUNNING') IS TRUE AND e.pause_state IS NULL
RETURNING e.redispatches,
    (SELECT f.timeout FROM durable_function f WHERE f.name = e.function_name) AS fn_timeout

-- name: mark_undispatched
-- The broker refused these executions' messages: the re-dispatcher sends them at its next round.
UPDATE durable_execution SET dispatched_at = NULL
WHERE id = ANY(%(execution_ids)s) AND needs_invoke AND NOT running

-- name: quarantine
-- The note (the loop, its failures, since when, the last error) is for the dashboard.
UPDATE durable_execution SET quarantined_at = %(now)s, quarantine = %(note)s WHERE id = %(execution_id)s

-- name: release_quarantine
-- Clear the quarantine and return the note it had: the self-join reads the row as it was
-- before this update.
UPDATE durable_execution e SET quarantined_at = NULL, quarantine = NULL
FROM durable_execution old
WHERE old.id = e.id AND e.arn = %(arn)s AND e.quarantined_at IS NOT NULL
RETURNING e.id, old.quarantined_at, old.quarantine

-- name: expired_executions
-- Executions whose retention period has passed since they ended; rows another purge holds are
-- skipped, so two schedulers never wait on each other.
SELECT id FROM durable_execution WHERE ended_at IS NOT NULL
    AND ended_at < now() - make_interval(days => retention_days)
LIMIT %(limit)s FOR UPDATE SKIP LOCKED

-- name: purge_rows_of
-- A template, not a statement: the same delete for each table that holds an execution's rows;
-- {table} is composed with psycopg.sql (a quoted identifier), never by editing this text.
DELETE FROM {table} WHERE execution_id = ANY(%(ids)s)

-- name: purge_executions
DELETE FROM durable_execution WHERE id = ANY(%(ids)s)
