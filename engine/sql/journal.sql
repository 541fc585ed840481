-- name: ship_journal_chunk
-- One shipment of a running invocation's journal (engine/journal_shipping.py): the JSON lines
-- written since the last one, as one jsonb array. Only while the invocation is open: once it has
-- ended (recorded by its worker, or recorded lost by another host's sweep) its record has been
-- ingested and its chunks deleted, and a host that comes back from a partition ships no more.
INSERT INTO durable_journal_chunk (request_id, execution_id, invocation_seq, entries, shipped_at)
SELECT %(request_id)s, %(execution_id)s, %(invocation_seq)s, %(entries)s::jsonb, now()
WHERE EXISTS (
    SELECT 1 FROM durable_invocation
    WHERE execution_id = %(execution_id)s AND seq = %(invocation_seq)s AND ended_at IS NULL
)

-- name: journal_chunks
-- The shipped record of an invocation whose host is lost, in the order it was shipped.
SELECT entries FROM durable_journal_chunk WHERE request_id = %(request_id)s ORDER BY id

-- name: delete_journal_chunks
-- After the invocation's record has been ingested: the chunks were only ever a copy of it.
DELETE FROM durable_journal_chunk WHERE request_id = %(request_id)s
