-- Faults (durable_fault): kills armed from the dashboard to show recovery. A fault fires once.

-- name: armed_faults
-- The faults an invocation checks at each step body's start and end.
SELECT id, kind, step_name, phase FROM durable_fault
WHERE execution_id = %(execution_id)s AND fired_at IS NULL AND phase IN ('body_start', 'after_body')
ORDER BY id

-- name: mark_fault_fired
-- fired_at IS NULL: a fault fires once even if two invocations reach it.
UPDATE durable_fault SET fired_at = %(at)s, invocation_seq = %(invocation_seq)s
WHERE id = %(fault_id)s AND fired_at IS NULL

-- name: record_kill_now
-- A kill of the running invocation is recorded as a fault that fired as it was armed.
INSERT INTO durable_fault (execution_id, kind, step_name, phase, armed_at, armed_by, fired_at, invocation_seq)
VALUES (%(execution_id)s, 'kill', NULL, 'now', %(now)s, %(user)s, %(now)s, %(invocation_seq)s)
RETURNING *

-- name: killed_now
-- Whether the operator's "kill now" fired at this invocation: its process died by that SIGKILL,
-- even when the worker's parent saw the death first and calls it a crash.
SELECT EXISTS (
    SELECT 1 FROM durable_fault
    WHERE execution_id = %(execution_id)s AND invocation_seq = %(invocation_seq)s AND phase = 'now'
        AND fired_at IS NOT NULL
) AS killed

-- name: arm_kill
-- A kill of the next invocation that reaches the step's body start or end.
INSERT INTO durable_fault (execution_id, kind, step_name, phase, armed_at, armed_by)
VALUES (%(execution_id)s, 'kill', %(step_name)s, %(phase)s, %(now)s, %(user)s)
RETURNING *
