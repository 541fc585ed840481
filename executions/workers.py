"""The workers & queue page's reads (issue 19): hosts, their worker processes, the broker's backlog
and the executions waiting for a worker.

Every figure is the engine's own record: ``durable_worker`` (registrations and leases),
``durable_invocation`` (who runs what) and ``durable_execution`` (what is owed), read with a
fixed number of queries against PostgreSQL's clock, plus one passive look at the broker queue.
A host is live while one of its processes is not stopped and renewed its heartbeat within the
lease (``engine.workers.lease_seconds``); it is lost when none is live but some never said
goodbye; stopped when all of them did.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from engine import workers as engine_workers

QUEUE = "durable"
# A stopped process (or one found lost) stays on the page this long: a restart's goodbye is worth
# seeing, a week of them is not (their count is still shown). A lost host's rows are never stopped
# (no process of it is left to say goodbye), so it is the finding that ages them out.
STOPPED_SHOWN = timedelta(hours=1)
WAITING_SHOWN = 50
# The page polls every few seconds: an unreachable broker must not hold each poll for long.
BROKER_TIMEOUT_SECONDS = 2.0

LIVE, LOST, STOPPED, UNREGISTERED = "live", "lost", "stopped", "unregistered"
BUSY, IDLE = "busy", "idle"


@dataclass(frozen=True)
class Process:
    id: int
    host_id: str
    hostname: str
    pid: int
    role: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    lost_at: datetime | None
    invocations_run: int
    execution_id: int | None
    invocation_seq: int | None
    function_name: str | None
    execution_name: str | None
    state: str
    heartbeat_age: timedelta


@dataclass(frozen=True)
class Host:
    host_id: str
    state: str
    lease_age: timedelta | None
    processes: list[Process]
    live_processes: int
    running: int
    lost_at: datetime | None
    lease_expired_at: datetime | None
    stopped_at: datetime | None
    older_stopped: int = 0


@dataclass(frozen=True)
class Waiting:
    execution_id: int
    function_name: str
    name: str
    reason: str
    dispatched_at: datetime
    queued_for: timedelta


@dataclass(frozen=True)
class Backlog:
    """Messages in the broker queue no worker has taken yet; ``messages`` is None when the broker
    could not be asked (``error`` says why)."""

    messages: int | None
    consumers: int | None = None
    error: str = ""
    note: str = ""


@dataclass(frozen=True)
class WorkersPage:
    now: datetime
    lease: timedelta
    hosts: list[Host]
    waiting: list[Waiting]
    waiting_count: int
    oldest_wait: timedelta | None
    backlog: Backlog
    running_total: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def registered(self) -> bool:
        return any(host.state != UNREGISTERED for host in self.hosts)


# --- the page -------------------------------------------------------------------------------


def workers_page(*, backlog: Backlog | None = None) -> WorkersPage:
    """Return everything the page shows, read at one moment of the database's clock."""
    now = _db_now()
    lease = timedelta(seconds=engine_workers.lease_seconds())
    hosts = host_list(now=now, lease=lease)
    waiting, count, oldest = waiting_list(now=now)
    counts: dict[str, int] = defaultdict(int)
    for host in hosts:
        counts[host.state] += 1
    return WorkersPage(
        now=now,
        lease=lease,
        hosts=hosts,
        waiting=waiting,
        waiting_count=count,
        oldest_wait=oldest,
        backlog=backlog if backlog is not None else queue_backlog(),
        running_total=sum(host.running for host in hosts),
        counts=dict(counts),
    )


def _db_now() -> datetime:
    # One clock for every age on the page, the one all hosts share, which also stamps the
    # heartbeats (engine/sql/workers.sql): a host whose own clock is off still shows its true age.
    return _rows("SELECT now()", [])[0][0]  # type: ignore[no-any-return]


def _rows(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- hosts and processes --------------------------------------------------------------------

# One row per process shown: its current invocation (the newest open one it started since it
# registered: a pid can be reused by a later process) and how many it has run since it started.
PROCESSES_SQL = """
WITH shown AS (
    SELECT * FROM durable_worker
    WHERE (stopped_at IS NULL AND (lost_at IS NULL OR lost_at >= %(cut)s)) OR stopped_at >= %(cut)s
),
ran AS (
    -- One pass over the invocations for all processes (a hash join), not one scan per process.
    SELECT s.id, count(*) AS n FROM shown s
    JOIN durable_invocation i ON i.worker = s.host_id AND i.pid = s.pid AND i.started_at >= s.started_at
        AND (s.stopped_at IS NULL OR i.started_at <= s.stopped_at)
    GROUP BY s.id
)
SELECT w.id, w.host_id, w.hostname, w.pid, w.role, w.started_at, w.heartbeat_at, w.stopped_at, w.lost_at,
       COALESCE(ran.n, 0), cur.execution_id, cur.seq, e.function_name, e.name
FROM shown w
LEFT JOIN ran ON ran.id = w.id
LEFT JOIN LATERAL (
    SELECT i.execution_id, i.seq FROM durable_invocation i
    WHERE i.worker = w.host_id AND i.pid = w.pid AND i.ended_at IS NULL AND i.started_at >= w.started_at
    ORDER BY i.started_at DESC LIMIT 1
) cur ON w.stopped_at IS NULL
LEFT JOIN durable_execution e ON e.id = cur.execution_id
ORDER BY w.host_id, w.stopped_at IS NOT NULL, w.role <> 'main', w.started_at, w.pid
"""

OLDER_STOPPED_SQL = """
SELECT host_id, count(*) FROM durable_worker
WHERE stopped_at < %(cut)s OR (stopped_at IS NULL AND lost_at < %(cut)s)
GROUP BY host_id
"""

# Open invocations by the host that runs them (a partial index holds exactly these rows).
RUNNING_SQL = "SELECT worker, count(*) FROM durable_invocation WHERE ended_at IS NULL GROUP BY worker"


def host_list(*, now: datetime, lease: timedelta) -> list[Host]:
    """Hosts with their processes: live first, then lost, then stopped; hosts that run
    invocations without having registered (a worker from before registration) last."""
    cut = {"cut": now - STOPPED_SHOWN}
    processes = [_process(row, now=now, lease=lease) for row in _rows(PROCESSES_SQL, cut)]
    older = dict(_rows(OLDER_STOPPED_SQL, cut))
    running = dict(_rows(RUNNING_SQL, []))
    by_host: dict[str, list[Process]] = defaultdict(list)
    for process in processes:
        by_host[process.host_id].append(process)
    hosts = [
        _host(host_id, procs, now=now, lease=lease, running=running.get(host_id, 0))
        for host_id, procs in by_host.items()
    ]
    hosts = [_with_older(host, older.get(host.host_id, 0)) for host in hosts]
    hosts += [_unregistered(worker, n) for worker, n in running.items() if worker not in by_host]
    order = {LIVE: 0, LOST: 1, STOPPED: 2, UNREGISTERED: 3}
    return sorted(hosts, key=lambda host: (order[host.state], host.host_id))


def _process(row: tuple[Any, ...], *, now: datetime, lease: timedelta) -> Process:
    (pk, host_id, hostname, pid, role, started, beat, stopped, lost, ran, execution_id, seq, fn, name) = row
    if stopped is not None:
        state = STOPPED
    elif lost is not None or beat < now - lease:
        state = LOST  # no heartbeat within the lease: its host stopped renewing it
    elif role != "main":
        state = BUSY if execution_id is not None else IDLE
    else:
        state = LIVE  # the Celery parent: it renews the lease, it runs no invocation itself
    return Process(
        id=pk,
        host_id=host_id,
        hostname=hostname,
        pid=pid,
        role=role,
        started_at=started,
        heartbeat_at=beat,
        stopped_at=stopped,
        lost_at=lost,
        invocations_run=ran,
        # A lost process's open invocation is the one its host was running when it went silent.
        execution_id=execution_id if state in (BUSY, LOST) else None,
        invocation_seq=seq if state in (BUSY, LOST) else None,
        function_name=fn,
        execution_name=name,
        state=state,
        heartbeat_age=now - beat,
    )


def _host(host_id: str, processes: list[Process], *, now: datetime, lease: timedelta, running: int) -> Host:
    open_ = [p for p in processes if p.stopped_at is None]
    live = [p for p in open_ if p.heartbeat_at >= now - lease]
    newest_beat = max((p.heartbeat_at for p in open_), default=None)
    lost_marks = [p.lost_at for p in processes if p.lost_at is not None]
    if live:
        state = LIVE
    elif open_ or lost_marks:
        state = LOST  # some process never said goodbye and none renews the lease
    else:
        state = STOPPED
    return Host(
        host_id=host_id,
        state=state,
        lease_age=now - newest_beat if newest_beat is not None else None,
        processes=processes,
        live_processes=len(live),
        running=running,
        lost_at=max(lost_marks) if state == LOST and lost_marks else None,
        lease_expired_at=newest_beat + lease if state == LOST and newest_beat is not None else None,
        stopped_at=max((p.stopped_at for p in processes if p.stopped_at), default=None) if state == STOPPED else None,
    )


def _with_older(host: Host, older: int) -> Host:
    return replace(host, older_stopped=older) if older else host


def _unregistered(worker: str, running: int) -> Host:
    return Host(
        host_id=worker or "(no host recorded)",
        state=UNREGISTERED,
        lease_age=None,
        processes=[],
        live_processes=0,
        running=running,
        lost_at=None,
        lease_expired_at=None,
        stopped_at=None,
    )


# --- executions waiting for a worker --------------------------------------------------------

# Owed an invocation whose message is out, and no worker has taken it up yet. A paused execution
# is not waiting for a worker (nothing is sent until it is resumed), as the timeline's queue time.
WAITING_WHERE = (
    "status = 'RUNNING' AND needs_invoke AND NOT running AND dispatched_at IS NOT NULL AND pause_state IS NULL"
)
WAITING_SQL = (
    f"SELECT id, function_name, name, invoke_reason, dispatched_at FROM durable_execution WHERE {WAITING_WHERE} "
    "ORDER BY dispatched_at, id LIMIT %s"
)
WAITING_COUNT_SQL = f"SELECT count(*), min(dispatched_at) FROM durable_execution WHERE {WAITING_WHERE}"


def waiting_list(*, now: datetime, limit: int = WAITING_SHOWN) -> tuple[list[Waiting], int, timedelta | None]:
    """The longest-waiting executions (oldest first), how many wait in all, and the oldest's wait."""
    rows = [
        Waiting(execution_id=pk, function_name=fn, name=name, reason=reason, dispatched_at=at, queued_for=now - at)
        for pk, fn, name, reason, at in _rows(WAITING_SQL, [limit])
    ]
    count, oldest = _rows(WAITING_COUNT_SQL, [])[0]
    return rows, int(count), (now - oldest if oldest is not None else None)


# --- the broker -----------------------------------------------------------------------------


def queue_backlog(
    *, queue: str | None = None, broker_url: str | None = None, transport_options: dict[str, Any] | None = None
) -> Backlog:
    """Messages waiting in the broker queue, by a passive declare on the app's broker connection
    (it creates nothing; redis, amqp and the filesystem transport all answer it). A broker that
    cannot be reached is an answer too: the page says so instead of failing. ``broker_url`` and
    ``transport_options`` (tests) ask another broker than the app's."""
    try:
        with _broker_connection(broker_url, transport_options) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
            return _declare_passive(conn, queue or QUEUE)
    except Exception as exc:  # any transport's failure: the page must render regardless
        return Backlog(messages=None, error=f"{type(exc).__name__}: {exc}".strip()[:300])


def _broker_connection(broker_url: str | None, transport_options: dict[str, Any] | None = None) -> Any:
    if broker_url is None:
        return _celery_app().connection_for_read(connect_timeout=BROKER_TIMEOUT_SECONDS)
    kombu: Any = importlib.import_module("kombu")  # untyped; Celery is a transport, not a page dependency
    return kombu.Connection(broker_url, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=transport_options)


def _declare_passive(conn: Any, queue: str) -> Backlog:
    from kombu.exceptions import ChannelError  # import here: Celery is a transport, not a page dependency

    channel = conn.channel()
    try:
        _name, messages, consumers = channel.queue_declare(queue=queue, passive=True)
    except ChannelError:
        # Redis drops an empty queue's key, and an amqp queue no worker declared yet holds nothing:
        # for a passive declare both are "no such queue", which is no message waiting.
        return Backlog(messages=0, note=f"the broker holds no queue “{queue}” now: no message waits")
    finally:
        _close_quietly(channel)
    return Backlog(messages=int(messages), consumers=int(consumers) if consumers else None)


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # an amqp 404 already closed the channel on the broker's side
        return


def _celery_app() -> Any:
    return importlib.import_module(settings.DURABLE_CELERY_APP).app


def broker_address() -> str:
    """The broker's transport and address without credentials (shown next to the backlog)."""
    with _broker_connection(None) as conn:
        # "redis://:**@host" for a broker without a password reads as if it had one.
        return str(conn.as_uri(include_password=False)).replace("//:**@", "//")
