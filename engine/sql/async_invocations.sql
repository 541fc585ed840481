-- Plain (non-durable) invocations of a function (durable_async_invocation): Event invocations
-- are retried with a delay and dead-lettered after max_attempts; RequestResponse ones run once.

-- name: insert_async_invocation
INSERT INTO durable_async_invocation (request_id, function_name, invocation_type, payload, time_scale,
    status, max_attempts, attempt_count, attempts, next_attempt_at, created_at, updated_at, redrive_of_id)
VALUES (%(request_id)s, %(function_name)s, %(invocation_type)s, %(payload)s, %(time_scale)s, %(status)s,
    %(max_attempts)s, 0, '[]', %(now)s, %(now)s, %(now)s, %(redrive_of)s)
RETURNING *

-- name: count_first_attempt
-- A RequestResponse invocation runs at once, in the caller's process: its one attempt.
UPDATE durable_async_invocation SET attempt_count = 1 WHERE id = %(id)s

-- name: lock_async_invocation_with_timeout
-- Lock the invocation and read its function's timeout (NULL if the function is gone), which
-- sets the attempt's lease.
SELECT a.*, f.timeout FROM durable_async_invocation a
LEFT JOIN durable_function f ON f.name = a.function_name
WHERE a.id = %(id)s FOR UPDATE OF a

-- name: claim_async_attempt
UPDATE durable_async_invocation SET status = 'RUNNING', attempt_count = attempt_count + 1,
    lease_until = %(lease_until)s, next_attempt_at = NULL, updated_at = %(now)s
WHERE id = %(id)s RETURNING *

-- name: mark_redriven
-- The dead-lettered original of a redrive that succeeded is REDRIVEN; the status guard leaves
-- it alone if it changed meanwhile.
UPDATE durable_async_invocation SET status = %(status)s, updated_at = %(now)s
WHERE id = %(id)s AND (status = %(expected_status)s) IS TRUE

-- name: record_async_attempt
-- Append the attempt and set the new status. next_attempt_at (a retry) and dead_lettered_at
-- (dead-lettered) are set only when given: NULL keeps the column as it is.
UPDATE durable_async_invocation SET status = %(status)s, attempts = attempts || %(attempt)s,
    result = %(result)s, error = %(error)s, lease_until = NULL, updated_at = %(now)s,
    next_attempt_at = COALESCE(%(next_attempt_at)s::timestamptz, next_attempt_at),
    dead_lettered_at = COALESCE(%(dead_lettered_at)s::timestamptz, dead_lettered_at)
WHERE id = %(id)s

-- name: async_invocation_by_id
SELECT * FROM durable_async_invocation WHERE id = %(id)s

-- name: async_invocation_by_request_id
SELECT * FROM durable_async_invocation WHERE request_id = %(request_id)s

-- name: dead_letters
-- The dead-letter queue, newest first. function_name NULL means every function;
-- include_redriven false leaves out the events already sent again.
SELECT * FROM durable_async_invocation
WHERE status = %(status)s
    AND (%(function_name)s::text IS NULL OR function_name = %(function_name)s::text)
    AND (%(include_redriven)s OR redriven_at IS NULL)
ORDER BY dead_lettered_at DESC, id DESC LIMIT %(limit)s

-- name: lock_async_invocation
-- A redrive locks the dead row, so that a concurrent second redrive waits and then finds the first.
SELECT * FROM durable_async_invocation WHERE id = %(id)s FOR UPDATE

-- name: redrive_of
SELECT * FROM durable_async_invocation WHERE redrive_of_id = %(id)s ORDER BY id LIMIT 1

-- name: mark_dead_letter_redriven
UPDATE durable_async_invocation SET redriven_at = %(redriven_at)s WHERE id = %(id)s
