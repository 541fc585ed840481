"""A known state of hosts, worker processes, invocations and waiting executions, written straight
into the engine's tables (the Django models refuse writes): shared by the workers page's
test-client tests (inside a transaction they roll back) and its browser test (committed, then
deleted)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

EXECUTION_SQL = """
INSERT INTO durable_execution (arn, function_name, name, status, started_at, execution_timeout, retention_days,
    time_scale, invocation_type, invocation_seq, token_seq, running, lease_until, needs_invoke, invoke_reason,
    dispatched_at, consecutive_failures, op_seq, seen_seq, event_seq, counters, pause_state, quarantined_at,
    quarantine)
VALUES (%s, %s, %s, 'RUNNING', now() - interval '10 minutes', 600, 1, 1.0, 'Event', 1, 0, %s,
    now() + interval '1 hour', %s, %s, now() - make_interval(secs => %s), 0, 0, 0, 0, '{}', %s,
    now(), '{"loop": "tests: a made-up row, left alone by the background loops"}')
RETURNING id
"""

WORKER_SQL = """
INSERT INTO durable_worker (host_id, hostname, pid, role, started_at, heartbeat_at, stopped_at, lost_at)
VALUES (%s, %s, %s, %s, now() - make_interval(secs => %s), now() - make_interval(secs => %s),
    CASE WHEN %s::float IS NULL THEN NULL ELSE now() - make_interval(secs => %s::float) END,
    CASE WHEN %s::float IS NULL THEN NULL ELSE now() - make_interval(secs => %s::float) END)
"""

INVOCATION_SQL = """
INSERT INTO durable_invocation (execution_id, seq, request_id, reason, started_at, ended_at, deadline, outcome,
    worker, pid, dispatched_at)
VALUES (%s, %s, %s, 'start', now() - make_interval(secs => %s),
    CASE WHEN %s THEN NULL ELSE now() - make_interval(secs => %s) + interval '1 second' END,
    now() + interval '1 hour', CASE WHEN %s THEN NULL ELSE 'suspended' END, %s, %s, NULL)
"""


@dataclass
class Scene:
    """Host ids and execution ids of the state built by :func:`build`."""

    tag: str
    live: str
    lost: str
    stopped: str
    old: str
    old_lost: str
    ghost: str
    function: str
    executions: dict[str, int] = field(default_factory=dict)


def build(cursor: Any) -> Scene:
    """Five registered hosts (live, lost, stopped, stopped long ago, found lost long ago), one that
    runs an invocation without having registered, and executions that wait, are paused or run."""
    tag = uuid.uuid4().hex[:6]
    scene = Scene(
        tag=tag,
        live=f"live-{tag}",
        lost=f"lost-{tag}",
        stopped=f"stopped-{tag}",
        old=f"old-{tag}",
        old_lost=f"oldlost-{tag}",
        ghost=f"ghost-{tag}",
        function=f"wk-{tag}",
    )
    _executions(cursor, scene)
    _workers(cursor, scene)
    _invocations(cursor, scene)
    return scene


def _execution(cursor: Any, scene: Scene, key: str, *, running: bool, owed: bool, reason: str, sent: float) -> None:
    paused = "PAUSED" if key == "paused" else None
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{scene.function}:$LATEST/durable-execution/{key}-{scene.tag}"
    cursor.execute(EXECUTION_SQL, [arn, scene.function, f"{key}-{scene.tag}", running, owed, reason, sent, paused])
    scene.executions[key] = cursor.fetchone()[0]


def _executions(cursor: Any, scene: Scene) -> None:
    _execution(cursor, scene, "busy", running=True, owed=False, reason="start", sent=120)
    _execution(cursor, scene, "on-lost", running=True, owed=False, reason="start", sent=90)
    _execution(cursor, scene, "on-ghost", running=True, owed=False, reason="start", sent=30)
    _execution(cursor, scene, "history", running=False, owed=False, reason="start", sent=600)
    _execution(cursor, scene, "waits-long", running=False, owed=True, reason="start", sent=45)
    _execution(cursor, scene, "waits-short", running=False, owed=True, reason="wait_elapsed", sent=5)
    # Owed and sent, but paused: nothing is waiting for a worker (the timeline agrees).
    _execution(cursor, scene, "paused", running=False, owed=True, reason="callback", sent=300)


def _worker(
    cursor: Any,
    host: str,
    pid: int,
    role: str,
    *,
    started: float,
    beat: float,
    stopped: float | None = None,
    lost: float | None = None,
) -> None:
    node = f"celery@{host}"
    cursor.execute(WORKER_SQL, [host, node, pid, role, started, beat, stopped, stopped, lost, lost])


def _workers(cursor: Any, scene: Scene) -> None:
    _worker(cursor, scene.live, 100, "main", started=300, beat=1)
    _worker(cursor, scene.live, 101, "pool", started=300, beat=1)  # busy
    _worker(cursor, scene.live, 102, "pool", started=300, beat=1)  # idle, has run three
    _worker(cursor, scene.live, 103, "pool", started=600, beat=400, stopped=400)  # replaced child
    _worker(cursor, scene.lost, 200, "main", started=900, beat=60, lost=20)
    _worker(cursor, scene.lost, 201, "pool", started=900, beat=60, lost=20)
    _worker(cursor, scene.stopped, 300, "main", started=1200, beat=600, stopped=600)
    _worker(cursor, scene.stopped, 301, "pool", started=1200, beat=600, stopped=600)
    _worker(cursor, scene.old, 400, "pool", started=99_000, beat=9000, stopped=9000)  # hidden: stopped 2.5 h ago
    _worker(cursor, scene.old_lost, 500, "main", started=99_000, beat=9000, lost=7200)  # hidden: found lost 2 h ago


def _invocation(cursor: Any, scene: Scene, key: str, seq: int, host: str, pid: int, *, ago: float, open_: bool) -> None:
    request = f"{scene.tag}-{key}-{seq}"
    cursor.execute(INVOCATION_SQL, [scene.executions[key], seq, request, ago, open_, ago, open_, host, pid])


def _invocations(cursor: Any, scene: Scene) -> None:
    _invocation(cursor, scene, "busy", 1, scene.live, 101, ago=100, open_=False)
    _invocation(cursor, scene, "busy", 2, scene.live, 101, ago=10, open_=True)
    for seq in (1, 2, 3):
        _invocation(cursor, scene, "history", seq, scene.live, 102, ago=200 - seq, open_=False)
    # Same host and pid as 102, but before that process started: an earlier process had the pid.
    _invocation(cursor, scene, "history", 4, scene.live, 102, ago=500, open_=False)
    _invocation(cursor, scene, "history", 5, scene.live, 103, ago=550, open_=False)
    _invocation(cursor, scene, "on-lost", 1, scene.lost, 201, ago=80, open_=True)
    _invocation(cursor, scene, "on-ghost", 1, scene.ghost, 4242, ago=20, open_=True)


def delete(cursor: Any, scene: Scene) -> None:
    """Remove what :func:`build` committed (the browser test's copy)."""
    ids = list(scene.executions.values())
    cursor.execute("DELETE FROM durable_invocation WHERE execution_id = ANY(%s)", [ids])
    cursor.execute("DELETE FROM durable_execution WHERE id = ANY(%s)", [ids])
    hosts = [scene.live, scene.lost, scene.stopped, scene.old, scene.old_lost]
    cursor.execute("DELETE FROM durable_worker WHERE host_id = ANY(%s)", [hosts])
