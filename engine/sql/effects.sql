-- Side effects (durable_effect) a handler records, to show duplicates across retries.

-- name: lock_effect_key
-- Serialise concurrent effects of one kind and key (a transaction-scoped advisory lock, released
-- at commit), so that two racing duplicates both see each other.
SELECT pg_advisory_xact_lock(hashtext(%(lock_key)s))

-- name: idempotency_key_used
-- An idempotent API answers a key it has seen without acting again, in any execution.
SELECT 1 FROM durable_effect WHERE kind = %(kind)s AND idempotency_key = %(idempotency_key)s AND performed LIMIT 1

-- name: effect_performed_before
-- The same effect already performed by this execution: this one is a duplicate.
SELECT 1 FROM durable_effect
WHERE execution_id = %(execution_id)s AND kind = %(kind)s AND key = %(key)s AND performed LIMIT 1

-- name: record_effect
INSERT INTO durable_effect (execution_id, op_id, invocation_seq, attempt, at, kind, key,
    idempotency_key, performed, duplicate)
VALUES (%(execution_id)s, %(op_id)s, %(invocation_seq)s, %(attempt)s, %(at)s, %(kind)s, %(key)s,
    %(idempotency_key)s, %(performed)s, %(duplicate)s)
