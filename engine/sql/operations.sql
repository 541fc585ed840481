-- Operations (durable_operation) and the history (durable_event). An operation's state is its
-- AWS Operation document (doc); the other columns are copies the engine's SQL filters and sorts on.

-- name: all_operations
-- Every operation of an execution, in first-seen order (ordinal), which is the order
-- GetDurableExecutionState and the handler's replay expect.
SELECT doc FROM durable_operation WHERE execution_id = %(execution_id)s ORDER BY ordinal

-- name: named_operations
-- The few operations a duty is about, by id, in the same order.
SELECT doc FROM durable_operation WHERE execution_id = %(execution_id)s AND op_id = ANY(%(op_ids)s)
ORDER BY ordinal

-- name: operations_touched_since
-- What changed since the handler last looked: touch_seq is the execution's op_seq at the
-- operation's last write.
SELECT doc FROM durable_operation WHERE execution_id = %(execution_id)s AND touch_seq > %(seq)s
ORDER BY ordinal

-- name: events_after
-- GetDurableExecutionHistory, oldest first: keyset paging on the event id.
SELECT event_id, timestamp, doc FROM durable_event WHERE execution_id = %(execution_id)s AND event_id > %(after)s
ORDER BY event_id LIMIT %(limit)s

-- name: events_before
-- The same with ReverseOrder: newest first, so the comparison and the order both turn round.
SELECT event_id, timestamp, doc FROM durable_event WHERE execution_id = %(execution_id)s AND event_id < %(after)s
ORDER BY event_id DESC LIMIT %(limit)s

-- name: defer_outcome
-- A chained invoke's outcome that came while the parent's invocation ran: kept on the operation
-- (its document unchanged) until that invocation ends (take_deferred_outcomes).
UPDATE durable_operation SET deferred_outcome = %(outcome)s
WHERE execution_id = %(execution_id)s AND op_id = %(op_id)s

-- name: take_deferred_outcomes
-- The outcomes kept for an execution's operations, cleared as they are read, in first-seen order.
-- Read before the UPDATE: its RETURNING would give the cleared value.
WITH taken AS (
    SELECT id, ordinal, doc, deferred_outcome FROM durable_operation
    WHERE execution_id = %(execution_id)s AND deferred_outcome IS NOT NULL),
cleared AS (
    UPDATE durable_operation SET deferred_outcome = NULL WHERE id IN (SELECT id FROM taken))
SELECT doc, deferred_outcome FROM taken ORDER BY ordinal
