"""Bench infrastructure: its own database, SQL counters, dispatchers, the worker stack, statistics.

Nothing here measures the engine by itself; ``bench.suite`` composes these pieces.
"""

from __future__ import annotations

import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
ENGINE_TABLES = ("durable_execution", "durable_operation", "durable_event", "durable_timer", "durable_invocation")


# --- the bench's own database ----------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabase:
    """A database the bench creates on the configured server and drops afterwards."""

    server_dsn: str
    name: str

    @property
    def dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname=self.name)

    @property
    def url(self) -> str:
        parts = conninfo_to_dict(self.dsn)
        auth = parts.get("user", "postgres") + (f":{parts['password']}" if parts.get("password") else "")
        host = parts.get("host", "127.0.0.1")
        if host.startswith("/"):
            return f"postgresql://{auth}@/{self.name}?host={host}"
        return f"postgresql://{auth}@{host}:{parts.get('port', 5432)}/{self.name}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(make_conninfo(self.server_dsn, dbname="postgres"), autocommit=True)

    def create(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def set_synchronous_commit(self, on: bool) -> None:
        """Change the default for new sessions; callers reopen their pools afterwards."""
        with self._admin() as conn:
            value = "on" if on else "off"
            conn.execute(f'ALTER DATABASE "{self.name}" SET synchronous_commit = {value}')

    def truncate_engine_tables(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(ENGINE_TABLES)} RESTART IDENTITY CASCADE")

    def vacuum_analyze(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for table in ENGINE_TABLES:
                conn.execute(f"VACUUM ANALYZE {table}")


def server_dsn_from_env() -> str:
    """The configured PostgreSQL server (DATABASE_URL, else the embedded one) as a libpq DSN."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        from durable_site.embedded import embedded_database_url

        url = embedded_database_url()
    return make_conninfo(url)


# --- deterministic counters ------------------------------------------------------------------


@dataclass
class SqlCounts:
    statements: int = 0  # statements the server executed (executemany counts each parameter set)
    calls: int = 0  # execute/executemany calls (executemany is one pipelined round of calls)

    def __sub__(self, other: SqlCounts) -> SqlCounts:
        return SqlCounts(self.statements - other.statements, self.calls - other.calls)


class StatementCounter:
    """Counts SQL statements of every psycopg cursor in this process (engine and Django alike).

    psycopg 3 has no execute hook, so the counter wraps ``Cursor.execute``/``executemany`` for
    the duration of a ``with`` block; ``Connection.execute`` goes through ``Cursor.execute``.
    """

    def __init__(self) -> None:
        self.counts = SqlCounts()
        self._lock = threading.Lock()
        self._saved: tuple[Any, Any] | None = None

    def snapshot(self) -> SqlCounts:
        with self._lock:
            return SqlCounts(self.counts.statements, self.counts.calls)

    def _add(self, statements: int) -> None:
        with self._lock:
            self.counts.statements += statements
            self.counts.calls += 1

    def __enter__(self) -> StatementCounter:
        execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
        self._saved = (execute, executemany)
        counter = self

        def counted_execute(cur: Any, *args: Any, **kwargs: Any) -> Any:
            counter._add(1)
            return execute(cur, *args, **kwargs)

        def counted_executemany(cur: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params = list(params_seq)
            counter._add(len(params))
            return executemany(cur, query, params, *args, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        psycopg.Cursor.execute, psycopg.Cursor.executemany = self._saved  # type: ignore[method-assign]


def _admin_dsn(dsn: str) -> str:
    # Probes connect to the "postgres" database so their own commits do not count.
    return make_conninfo(dsn, dbname="postgres")


def xact_commits(dsn: str) -> int:
    """Committed transactions of the database so far, as PostgreSQL's statistics count them."""
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(_admin_dsn(dsn), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def wait_for_idle_backends(dsn: str, timeout: float = 10.0) -> None:
    """Wait until no session is connected to the database.

    A backend flushes its statistics when it exits, so counting commits is exact only once the
    pools that ran the measured work are closed and their backends are gone.
    """
    name = conninfo_to_dict(dsn)["dbname"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(_admin_dsn(dsn), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.02)
    raise RuntimeError(f"sessions still connected to {name} after {timeout}s: commit counts would be wrong")


@contextmanager
def commit_counter(dsn: str, close_pools: Callable[[], None]) -> Iterator[dict[str, int]]:
    """Yield a dict that receives ``commits``: the xact_commit delta of the block."""
    close_pools()
    wait_for_idle_backends(dsn)
    before = xact_commits(dsn)
    result: dict[str, int] = {}
    yield result
    close_pools()
    wait_for_idle_backends(dsn)
    result["commits"] = xact_commits(dsn) - before


# --- dispatchers -----------------------------------------------------------------------------


class QueueDispatcher:
    """Records requested invocations; the bench runs them in-process, in its own thread."""

    def __init__(self) -> None:
        self.pending: queue.SimpleQueue[int] = queue.SimpleQueue()

    def invoke(self, execution_id: int, timeout: float) -> None:
        self.pending.put(execution_id)

    def call_plain(self, call: Any) -> None:
        raise NotImplementedError("benchmarks do not chain plain functions")

    def drain(self) -> list[int]:
        ids = []
        while True:
            try:
                ids.append(self.pending.get_nowait())
            except queue.Empty:
                return ids


# --- completion watcher ----------------------------------------------------------------------


class DoneWatcher:
    """LISTENs to the engine's ``durable_done`` notification and notes when each ARN finished."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute("LISTEN durable_done")
        self._done: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-done-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                with self._cond:
                    self._done.setdefault(note.payload, time.perf_counter())
                    self._cond.notify_all()

    def wait(self, arn: str, timeout: float = 120.0) -> float:
        """Return the perf_counter() time the ARN's completion was observed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while arn not in self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"execution {arn} did not finish within {timeout}s")
                self._cond.wait(left)
            return self._done[arn]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._conn.close()


# --- the worker and scheduler processes ------------------------------------------------------


class Stack:
    """A Celery worker (prefork -c 2, or ``concurrency``) and the scheduler, as subprocesses of the bench."""

    def __init__(self, env: dict[str, str], concurrency: int = 2) -> None:
        self.env = env
        self.concurrency = concurrency
        self.logs = Path(tempfile.mkdtemp(prefix="durable-bench-"))
        self.worker: subprocess.Popen[str] | None = None
        self.scheduler: subprocess.Popen[str] | None = None

    def start(self, *, scheduler: bool) -> None:
        worker_log = self.logs / "worker.log"
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_app",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(self.concurrency),
            "-Q",
            "durable",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
            "-l",
            "INFO",
        ]
        self.worker = self._spawn(cmd, worker_log)
        if scheduler:
            self.scheduler = self._spawn(
                [sys.executable, "manage.py", "durable_scheduler"], self.logs / "scheduler.log"
            )
        _wait_for_text(worker_log, "ready.", self.worker)

    def _spawn(self, cmd: list[str], log: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )

    def stop(self) -> None:
        for proc in (self.worker, self.scheduler):
            _stop_group(proc)
        self.worker = self.scheduler = None


def _stop_group(proc: subprocess.Popen[str] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_for_text(path: Path, marker: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready within {timeout}s:\n{path.read_text(errors='replace')[-3000:]}")


# --- statistics ------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Ratio:
    """Engine ÷ baseline over interleaved rounds: the median ratio and its spread."""

    per_round: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_round)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": min(self.per_round),
            "max": max(self.per_round),
            "rounds": len(self.per_round),
        }


def fsync_probe(directory: Path, seconds: float = 1.0) -> dict[str, Any]:
    """Mean µs of a 4 KiB write + fsync, repeated for ``seconds`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="fsync-probe-", dir=directory)
    block = b"\0" * 4096
    count, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            count += 1
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(name)
    return {"mean_us": elapsed / count * 1e6, "fsyncs": count, "directory": str(directory)}
