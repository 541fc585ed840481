"""Many hosts (issue 19): the worker registry and its lease, a lost host's invocations recovered,
and "kill now" and armed faults reaching an invocation that runs on another host.

"Another host" is a real Celery worker started here with its own ``DURABLE_HOST_ID`` and
``DURABLE_DATA_DIR``, in a process group of its own; while it runs, the session's worker is
stopped so that the other host takes every message (and started again afterwards).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import clock, db, faults
from engine.duties.claim import claim_invocation
from engine.duties.sweep import recover_lost_invocations
from engine.duties.unit import utcnow
from engine.errors import InvalidParameterValueException
from engine.scheduler import RECOVERY_EVERY
from engine.store import store
from engine.workers import host_id
from tests.conftest import ROOT, TEMP_DIR, Stack, _child_env, _stop_group, _wait_for_log, wait_until, worker_argv

HANDLER = "tests.handlers.invocations.three_steps"
LEASE = 2.0  # seconds: the other host's lease, and that of the scheduler judging it


@dataclass
class OtherHost:
    """A Celery worker that says it runs on host ``host_id``."""

    host_id: str
    proc: subprocess.Popen[str]
    log: Path
    data_dir: Path

    def pool_pids(self) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return {int(pid) for pid in out.split()}

    def lose(self) -> float:
        """Power off: every process of the host dies at once, with no goodbye; return when."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        at = time.time()
        self.proc.wait(timeout=10)
        return at


@dataclass
class Hosts:
    """The other hosts (and scheduler) a test started; the session's stack is restored after."""

    stack: Stack
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def start_worker(self, concurrency: int = 2) -> OtherHost:
        name = f"other-{uuid.uuid4().hex[:8]}"
        data_dir = TEMP_DIR / name
        env = {**_child_env(), "DURABLE_HOST_ID": name, "DURABLE_DATA_DIR": str(data_dir)}
        env["DURABLE_HOST_LEASE_SECONDS"] = str(LEASE)
        log = TEMP_DIR / f"{name}.log"
        proc = self._popen(worker_argv(concurrency, f"{name}@%h"), env, log)
        _wait_for_log(log, "ready.", proc)
        return OtherHost(name, proc, log, data_dir)

    def start_scheduler(self) -> None:
        """This host's scheduler, judging other hosts by the short lease."""
        self.stack.stop_scheduler()
        env = {**_child_env(), "DURABLE_HOST_LEASE_SECONDS": str(LEASE)}
        log = TEMP_DIR / f"scheduler-{uuid.uuid4().hex[:6]}.log"
        proc = self._popen([sys.executable, "manage.py", "durable_scheduler"], env, log)
        _wait_for_log(log, "durable scheduler: running", proc)

    def _popen(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.started.append(proc)
        return proc


@pytest.fixture
def hosts(stack: Stack) -> Iterator[Hosts]:
    stack.stop_worker()
    started = Hosts(stack)
    try:
        yield started
    finally:
        for proc in started.started:
            _stop_group(proc, signal.SIGTERM)
        if stack.scheduler is None:
            stack.start_scheduler()
        if stack.worker is None:
            stack.start_worker()


@pytest.fixture
def function(lam: Any, unique: str) -> str:
    name = f"hosts-{unique}"
    config = {"ExecutionTimeout": 120, "RetentionPeriodInDays": 1}
    lam.create_function(FunctionName=name, Handler=HANDLER, Timeout=30, DurableConfig=config)
    return name


def start(lam: Any, function: str, **event: Any) -> str:
    response = lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    return str(response["DurableExecutionArn"])


def worker_rows(host: str) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute("SELECT * FROM durable_worker WHERE host_id = %s ORDER BY id", (host,)).fetchall()


def invocations(arn: str) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT i.* FROM durable_invocation i JOIN durable_execution e ON e.id = i.execution_id "
            "WHERE e.arn = %s ORDER BY i.seq",
            (arn,),
        ).fetchall()


def step_started(arn: str, name: str, seq: int) -> None:
    """Wait until invocation ``seq`` runs step ``name``'s body."""

    def check() -> bool:
        with db.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM durable_operation o JOIN durable_execution e ON e.id = o.execution_id "
                "WHERE e.arn = %s AND o.name = %s AND o.status = 'STARTED' AND e.invocation_seq = %s AND e.running",
                (arn, name, seq),
            ).fetchone()
        return row is not None

    wait_until(check, timeout=30, message=f"step {name} to start in invocation {seq}")
    time.sleep(0.3)  # into the body, past its effect record


def finished(lam: Any, arn: str) -> str:
    wait_until(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING",
        timeout=90,
        message="execution to end",
    )
    return str(lam.get_durable_execution(DurableExecutionArn=arn)["Status"])


def test_a_worker_registers_its_processes_renews_their_lease_and_says_goodbye(hosts: Hosts) -> None:
    other = hosts.start_worker(concurrency=2)
    pool = other.pool_pids()
    wait_until(lambda: len(worker_rows(other.host_id)) == 3, 10, message="main and pool rows")
    rows = worker_rows(other.host_id)
    assert {(row["role"], row["pid"]) for row in rows} == {("main", other.proc.pid), *(("pool", pid) for pid in pool)}
    assert {row["hostname"] for row in rows} == {f"{other.host_id}@{os.uname().nodename}"}
    first = {row["pid"]: row["heartbeat_at"] for row in rows}
    time.sleep(LEASE / 4 * 3)
    assert all(row["heartbeat_at"] > first[row["pid"]] for row in worker_rows(other.host_id))
    # A replaced pool child: its row is stopped, its successor registers and is renewed.
    gone = min(pool)
    os.kill(gone, signal.SIGKILL)
    wait_until(lambda: len(other.pool_pids() - {gone}) == 2, 15, message="the pool child replaced")
    wait_until(lambda: _stopped(other.host_id) == {gone}, 10, message="the replaced child's row stopped")
    _stop_group(other.proc, signal.SIGTERM)
    assert all(row["stopped_at"] is not None and row["lost_at"] is None for row in worker_rows(other.host_id))


def _stopped(host: str) -> set[int]:
    return {row["pid"] for row in worker_rows(host) if row["stopped_at"] is not None}


def test_a_lost_hosts_invocation_is_recorded_crashed_within_the_lease_and_runs_on_a_live_host(
    hosts: Hosts, lam: Any, function: str
) -> None:
    hosts.start_scheduler()
    other = hosts.start_worker()
    arn = start(lam, function, sleep=4)
    step_started(arn, "B", 1)
    assert invocations(arn)[0]["worker"] == other.host_id
    lost_at = other.lose()
    hosts.stack.start_worker()  # a live host to run it again (its own host id: this machine's)
    wait_until(lambda: invocations(arn)[0]["ended_at"] is not None, 30, message="the lost invocation recorded")
    first = invocations(arn)[0]
    delay = first["ended_at"].timestamp() - lost_at
    # Found once no beat renewed the lease: not before the lease less one beat, within lease + a round.
    assert LEASE * 0.75 - 0.3 <= delay <= LEASE + RECOVERY_EVERY + 1.5, delay
    assert first["outcome"] == "crashed" and first["error"]["ErrorType"] == "Runtime.ExitError"
    assert all(row["lost_at"] is not None for row in worker_rows(other.host_id))
    assert finished(lam, arn) == "SUCCEEDED"
    assert [row["worker"] for row in invocations(arn)[1:]] == [host_id()]


def test_kill_now_reaches_another_host_and_refuses_a_lost_one(
    hosts: Hosts, lam: Any, function: str, no_scheduler: None
) -> None:
    other = hosts.start_worker()
    arn = start(lam, function, sleep=3)
    step_started(arn, "B", 1)
    assert invocations(arn)[0]["worker"] == other.host_id != host_id()
    asked = time.time()
    fault = faults.kill_now(arn, user="tester")
    first = invocations(arn)[0]
    assert fault["invocation_seq"] == 1 and first["outcome"] == "killed"
    assert first["ended_at"].timestamp() - asked < 1.0
    assert "killed process" in other.log.read_text()
    # Invoked again at once, on the only live host: the other one. Then that host is lost.
    step_started(arn, "B", 2)
    other.lose()
    time.sleep(LEASE + 0.3)
    lost = f"host '{other.host_id}' is lost"
    with pytest.MonkeyPatch.context() as patch, pytest.raises(InvalidParameterValueException, match=lost):
        patch.setenv("DURABLE_HOST_LEASE_SECONDS", str(LEASE))  # this process judges by the same lease
        faults.kill_now(arn, user="tester")
    hosts.start_scheduler()
    hosts.stack.start_worker()
    assert finished(lam, arn) == "SUCCEEDED"
    assert [row["outcome"] for row in invocations(arn)] == ["killed", "crashed", "succeeded"]


def test_a_fault_armed_here_fires_in_an_invocation_on_another_host(hosts: Hosts, lam: Any, function: str) -> None:
    other = hosts.start_worker()
    arn = start(lam, function, sleep=0.2, a_sleep=2)
    step_started(arn, "A", 1)
    # This process's own signal file is in another data directory: only the notice reaches it.
    assert Path(os.environ["DURABLE_DATA_DIR"]) != other.data_dir
    faults.arm(arn, "B", "after_body", user="tester")
    assert finished(lam, arn) == "SUCCEEDED"
    outcomes = [(row["seq"], row["worker"], row["outcome"]) for row in invocations(arn)]
    assert outcomes[0] == (1, other.host_id, "killed")
    with db.connection() as conn:
        fired = conn.execute(
            "SELECT f.invocation_seq FROM durable_fault f JOIN durable_execution e ON e.id = f.execution_id "
            "WHERE e.arn = %s AND f.fired_at IS NOT NULL",
            (arn,),
        ).fetchall()
    assert [row["invocation_seq"] for row in fired] == [1]


def test_the_lease_thread_waits_out_a_lost_database_connection(hosts: Hosts) -> None:
    other = hosts.start_worker(concurrency=1)
    wait_until(lambda: len(worker_rows(other.host_id)) == 2, 10, message="main and pool rows")
    name = f"durable worker {other.host_id} {other.proc.pid}"
    with db.connection() as conn:
        cut = conn.execute(
            "SELECT now() AS at, count(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert cut is not None and cut["ended"] == 1
    wait_until(
        lambda: all(row["heartbeat_at"] > cut["at"] for row in worker_rows(other.host_id)),
        10,
        message="the lease renewed on a new connection",
    )
    assert other.proc.poll() is None
    log = other.log.read_text()
    assert log.count("database unavailable") == 1 and "database available again" in log


def test_hosts_recording_one_lost_invocation_at_once_record_it_once(
    client: Any, functions: Any, recorder: Any, no_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = functions("tests.handlers.invocations.three_steps")
    client.invoke(FunctionName=name, InvocationType="Event", Payload="{}")
    far = f"far-{uuid.uuid4().hex[:8]}"
    with monkeypatch.context() as patch:
        patch.setenv("DURABLE_HOST_ID", far)
        ticket = claim_invocation(recorder.invoked.pop())
    assert ticket is not None
    long_ago = utcnow() - timedelta(minutes=1)
    with db.transaction() as conn:  # a host that registered this process, then went silent
        store.register_worker(conn, {"host_id": far, "hostname": f"celery@{far}"}, os.getpid(), "pool", long_ago)
        silent(conn, far, timedelta(minutes=1))
    with ThreadPoolExecutor(4) as pool:
        recorded = list(pool.map(lambda _: recover_lost_invocations(), range(4)))
    # Invocations that earlier tests' killed workers left running may be recorded too.
    assert sum(recorded) >= 1
    with db.connection() as conn:
        completed = conn.execute(
            "SELECT count(*) AS n FROM durable_event WHERE execution_id = %s AND event_type = 'InvocationCompleted'",
            (ticket.execution_id,),
        ).fetchone()
    assert completed is not None and completed["n"] == 1
    assert recorder.invoked.count(ticket.execution_id) == 1  # invoked again, once


def silent(conn: Any, host: str, for_: timedelta) -> None:
    """Make ``host``'s last heartbeat ``for_`` old, on the database's clock."""
    conn.execute("UPDATE durable_worker SET heartbeat_at = now() - %s WHERE host_id = %s", (for_, host))


def test_a_host_whose_clock_runs_behind_is_live_while_it_renews() -> None:
    """Heartbeats and the lease are read on the database's clock: a host whose clock is a minute
    behind the scheduler's (far past the lease) is live while it renews, and lost once it stops."""
    behind = f"behind-{uuid.uuid4().hex[:8]}"
    worker = {"host_id": behind, "hostname": f"celery@{behind}", "since": utcnow() - timedelta(minutes=2)}
    lease = timedelta(seconds=LEASE)
    right = clock.set_clock(lambda: datetime.now(UTC) - timedelta(minutes=1))  # that host's own clock
    try:
        with db.transaction() as conn:
            store.register_worker(conn, worker, 4242, "main", utcnow())
            store.renew_workers(conn, worker, [4242], timedelta(seconds=1))
    finally:
        clock.set_clock(right)  # the scheduler's clock
    with db.transaction() as conn:
        assert behind not in store.newly_lost_hosts(conn, lease)
        assert store.lost_hosts(conn, [behind], lease) == {}
        assert store.worker_process_state(conn, behind, 4242, lease)["live"]
        silent(conn, behind, 2 * lease)  # the host stops renewing: lost after the lease, as ever
        assert behind in store.newly_lost_hosts(conn, lease)
        assert store.lost_hosts(conn, [behind], lease) == {behind: {4242}}
        conn.execute("DELETE FROM durable_worker WHERE host_id = %s", (behind,))
