-- Worker processes (durable_worker) and the control channel to them (issue 19). A Celery worker's
-- parent ("main") and each pool child ("pool") has a row; the parent renews heartbeat_at of its
-- own rows, and a host with rows none of which is live (not stopped, renewed within the lease) is
-- lost. Rows are picked out by host, node name (Celery's hostname) and started_at >= the
-- parent's start: several workers may share a host id, and a pid may come back after a restart.
-- Heartbeats, stops and the lease are read on the database server's clock (now()), never a
-- host's: a host whose clock runs behind by more than the lease would otherwise look lost while
-- it renews, and its running invocations would be recorded crashed and run again elsewhere.
-- started_at is the host's own clock, compared only with its own parent's start (since).

-- name: register_worker
INSERT INTO durable_worker (host_id, hostname, pid, role, started_at, heartbeat_at)
VALUES (%(host_id)s, %(hostname)s, %(pid)s, %(role)s, %(started_at)s, now())
RETURNING id

-- name: renew_workers
-- One statement per beat: the parent's own live processes (pids) are renewed; a row of its whose
-- process is gone (a replaced pool child) is stopped once it has missed a beat, so a child that
-- registered after the parent listed its processes is not stopped before its first renewal.
UPDATE durable_worker SET
    heartbeat_at = CASE WHEN pid = ANY(%(pids)s) THEN now() ELSE heartbeat_at END,
    stopped_at = CASE WHEN pid = ANY(%(pids)s) THEN NULL ELSE now() END
WHERE host_id = %(host_id)s AND hostname = %(hostname)s AND started_at >= %(since)s AND stopped_at IS NULL
    AND (pid = ANY(%(pids)s) OR heartbeat_at < now() - %(beat)s::interval)

-- name: stop_workers
-- A clean shutdown: every row of this worker (parent and pool) is stopped.
UPDATE durable_worker SET stopped_at = now()
WHERE host_id = %(host_id)s AND hostname = %(hostname)s AND started_at >= %(since)s AND stopped_at IS NULL

-- name: lost_hosts
-- Of these hosts, the ones that registered and have no live row, with the pids their workers
-- ran: an invocation of such a pid is lost with its host. A host that never registered (an
-- in-process run) is not in the answer: the invocation deadline is its backstop.
SELECT host_id, array_agg(DISTINCT pid) AS pids FROM durable_worker
WHERE host_id = ANY(%(hosts)s)
GROUP BY host_id
HAVING NOT bool_or(stopped_at IS NULL AND heartbeat_at >= now() - %(lease)s::interval)

-- name: newly_lost_hosts
-- Hosts that went without a goodbye and are not marked lost yet: rows not stopped, not marked,
-- none renewed within the lease, and the host's last word was not a goodbye. A worker killed
-- while another of its host ran leaves rows that never renew; when the host's last worker then
-- stops cleanly, the host was shut down, not lost (its killed worker's invocations are recorded
-- through their pids all the same). Read through the partial index of live rows, every sweep.
SELECT host_id FROM durable_worker
WHERE stopped_at IS NULL AND lost_at IS NULL
GROUP BY host_id
HAVING max(heartbeat_at) < now() - %(lease)s::interval
    AND NOT EXISTS (SELECT 1 FROM durable_worker live WHERE live.host_id = durable_worker.host_id
        AND live.stopped_at IS NULL AND live.heartbeat_at >= now() - %(lease)s::interval)
    AND max(heartbeat_at) >= coalesce((SELECT max(said.stopped_at) FROM durable_worker said
        WHERE said.host_id = durable_worker.host_id), '-infinity')
ORDER BY host_id

-- name: worker_process_state
-- What "kill now" needs to know of the process running an invocation on another host: whether
-- the host registered at all, whether it is live, and whether the process is a registered worker
-- process that has not stopped (only such a process has a parent listening for the kill).
SELECT count(*) > 0 AS registered,
    coalesce(bool_or(stopped_at IS NULL AND heartbeat_at >= now() - %(lease)s::interval), false) AS live,
    coalesce(bool_or(pid = %(pid)s AND stopped_at IS NULL), false) AS process_running
FROM durable_worker WHERE host_id = %(host_id)s

-- name: mark_host_lost
-- Set by the host that recorded the lost host's invocations: when the dashboard saw it go.
UPDATE durable_worker SET lost_at = now()
WHERE host_id = %(host_id)s AND stopped_at IS NULL AND lost_at IS NULL

-- name: notify_control
-- A message to every worker parent (kill a process, re-read armed faults). Sent at commit: a
-- kill is never delivered for a fault record that was rolled back.
SELECT pg_notify('durable_control', %(message)s)

-- name: listen_control
LISTEN durable_control
