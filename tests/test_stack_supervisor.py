"""`make run`'s supervisor for real: killed parts come back, Ctrl-C ends every process, and the
stack rides out a PostgreSQL and a broker outage (private servers, never the machine's)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from durable_site import embedded
from tests.browser.fixtures import _free_port
from tests.conftest import temporary_folder

ROOT = Path(__file__).resolve().parent.parent
# The machine's redis-server if it has one, else the Valkey server the project installs from pip.
REDIS_SERVER = shutil.which("redis-server") or str(embedded.valkey_server_binary())
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")

pytestmark = pytest.mark.slow


# --- private servers ------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server on a free port in a temporary folder, stoppable and restartable."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [REDIS_SERVER, *args, "--dir", str(self.folder)], stdout=subprocess.DEVNULL, start_new_session=True
        )
        _wait_for(lambda: _redis_answers(self.port), 20, "private redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # an abrupt loss: queued messages are gone with it
            self.process.wait(timeout=10)
        self.process = None


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


class PrivatePostgres:
    """A pgserver PostgreSQL in a temporary folder, stopped and started with its own pg_ctl."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.folder = folder / "pg"
        self.server = pgserver.get_server(self.folder, cleanup_mode="delete")
        self.server.psql("CREATE DATABASE durable_lab;")
        self.url = f"postgresql://postgres@/durable_lab?host={self.folder}"
        self.start_args = ["-w", "-o", '-h ""', "-o", f"-k {self.folder}", "-l", str(self.folder / "log"), "start"]

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver import _commands

        user = "pgserver" if os.geteuid() == 0 else None
        _commands.pg_ctl(args, pgdata=self.folder, user=user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        self._pg_ctl(self.start_args)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()

    def remove(self) -> None:
        # pgserver's cleanup stops only the postmaster it started itself, not a restarted one.
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop()
        self.server.cleanup()


# --- the supervised stack -------------------------------------------------------------------


class RunningStack:
    """``manage.py durable_up`` as `make run` starts it, with its own data folder and log."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.data = folder / "data"
        self.log_path = folder / "durable_up.log"
        self.env = {**env, "DURABLE_DATA_DIR": str(self.data), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.env.pop("DJANGO_DEBUG", None)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "durable_up", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        _wait_for(lambda: "Durable Lab is up" in self.log() or self.process.poll() is not None, 120, "durable_up")
        assert self.process.poll() is None, self.log()
        # "Is up" is said once the web part answers, not as soon as it is started.
        log = self.log()
        assert "web ready on" in log and log.index("web ready on") < log.index("Durable Lab is up"), log
        assert self.http_status("/accounts/login/") == 200
        _wait_for(lambda: "ready." in self.log(), 60, "the worker")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        return json.loads((self.data / "run.json").read_text())

    def part_pid(self, name: str) -> int:
        pid = self.status()["parts"][name]["pid"]
        assert pid, self.status()
        return int(pid)

    def http_status(self, path: str) -> int | None:
        return self.get(path)[0]

    def get(self, path: str, cookie: str = "") -> tuple[int | None, dict[str, str]]:
        request = urllib.request.Request(self.url + path, headers={"Cookie": cookie} if cookie else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers)
        except OSError:
            return None, {}

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if k != "DURABLE_WORKERS"}
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )

    def interrupt(self) -> list[psutil.Process]:
        """Ctrl-C the supervisor; return the processes it had started (to check they are gone)."""
        started = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        return started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.interrupt()


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    def running(proc: psutil.Process) -> bool:
        try:
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [proc for proc in processes if running(proc)]


def _broker(folder: Path) -> tuple[str, PrivateRedis | None]:
    """A private Redis, so only this stack's worker takes its messages."""
    redis_server = PrivateRedis(folder)
    redis_server.start()
    return redis_server.url, redis_server


# --- tests ----------------------------------------------------------------------------------


def _postmaster(data_dir: Path) -> psutil.Process | None:
    pgdata = str((data_dir / "postgres").resolve())
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and pgdata in (proc.info["cmdline"] or []):
            return proc
    return None


def test_killed_parts_are_restarted_and_ctrl_c_ends_every_process() -> None:
    """Zero-config, as `make run` starts it: its own embedded PostgreSQL in its own data folder."""
    with temporary_folder() as folder:
        broker_url, redis_server = _broker(folder)
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        stack = RunningStack(folder, {**env, "CELERY_BROKER_URL": broker_url})
        try:
            for name in ("scheduler", "worker", "web"):
                old = stack.part_pid(name)
                os.kill(old, signal.SIGKILL)
                _wait_for(lambda name=name, old=old: stack.status()["parts"][name]["pid"] not in (None, old), 30, name)
                assert stack.status()["parts"][name]["restarts"] == 1
                assert f"{name} exited (code -9); restart 1 in 1 s" in stack.log()
            postmaster = _postmaster(stack.data)
            assert postmaster is not None
            postmaster.kill()
            _wait_for(lambda: "embedded PostgreSQL is not running; restart 1" in stack.log(), 30, "the restart")
            _wait_for(lambda: _postmaster(stack.data) not in (None, postmaster), 60, "a new embedded PostgreSQL")
            assert stack.status()["embedded_database_restarts"] >= 1  # a start can fail while the dead one unwinds
            _wait_for(lambda: stack.http_status("/accounts/login/") == 200, 60, "the restarted web server")
            _wait_for(lambda: stack.log().count("ready.") >= 2, 60, "the restarted worker")
            result = stack.manage(
                "durable", "invoke", "--function-name", "hello-steps", "--payload", '{"wait_seconds": 1}'
            )
            assert '"StatusCode": 200' in result.stdout and "FunctionError" not in result.stdout, result
            started = stack.interrupt()
            assert stack.process.returncode == 0, stack.log()[-3000:]
            assert started, "the supervisor had no child processes"
            assert _alive(started) == []
            assert _postmaster(stack.data) is None, "the embedded PostgreSQL outlived make run"
            assert "Durable Lab stopped." in stack.log()
            assert stack.status()["supervisor_pid"] is None
        finally:
            stack.kill()
            if redis_server is not None:
                redis_server.stop()


def _start_executions(stack: RunningStack, count: int, wait_seconds: int) -> list[str]:
    script = (
        "import json, engine\n"
        f"arns = [engine.client().invoke(FunctionName='hello-steps', InvocationType='Event', "
        f"Payload=json.dumps({{'name': f'fault-{{i}}', 'wait_seconds': {wait_seconds}}}))['DurableExecutionArn'] "
        f"for i in range({count})]\n"
        "print(json.dumps(arns))\n"
    )
    result = stack.manage("shell", "-c", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _unfinished(db: PrivatePostgres, arns: list[str]) -> int:
    try:
        rows = db.query("SELECT arn, status FROM durable_execution")
    except psycopg.OperationalError:
        return len(arns)
    done = {arn for arn, status in rows if status in TERMINAL}
    return len(set(arns) - done)


def test_stack_survives_a_database_and_a_broker_outage(capsys: pytest.CaptureFixture[str]) -> None:
    with temporary_folder() as folder:
        db = PrivatePostgres(folder)
        broker_url, redis_server = _broker(folder)
        env = {**os.environ, "DATABASE_URL": db.url, "CELERY_BROKER_URL": broker_url}
        stack = RunningStack(folder, {**env, "DURABLE_WEB_DB_POOL_TIMEOUT": "3"})
        try:
            reference = _start_executions(stack, count=1, wait_seconds=1)
            _wait_for(lambda: _unfinished(db, reference) == 0, 60, "the reference execution")
            arns = _start_executions(stack, count=6, wait_seconds=6)
            time.sleep(2)  # into their waits: a timer, a checkpoint and an invocation owed each

            db.stop()
            outage_started = time.monotonic()
            # A page that needs the database (a session to look up) says "busy, retry": no 500.
            status, headers = stack.get("/executions/", cookie="sessionid=no-such-session")
            assert (status, headers.get("Retry-After")) == (503, "5")
            time.sleep(max(0.0, 10 - (time.monotonic() - outage_started)))
            db.start()
            db_back = time.monotonic()
            _wait_for(lambda: _unfinished(db, arns) == 0, 120, "every execution to finish after the database outage")
            db_recovery = time.monotonic() - db_back

            broker_recovery = None
            if redis_server is not None:
                late = _start_executions(stack, count=3, wait_seconds=4)
                time.sleep(1)
                redis_server.stop()
                time.sleep(10)
                redis_server.start()
                broker_back = time.monotonic()
                _wait_for(lambda: _unfinished(db, late) == 0, 150, "every execution to finish after the outage")
                broker_recovery = time.monotonic() - broker_back
                arns += late

            assert stack.process.poll() is None, "the supervisor itself must survive"
            parts = stack.status()["parts"]
            _wait_for(lambda: all(p["state"] == "running" for p in stack.status()["parts"].values()), 60, "parts")
            rows = db.query(
                "SELECT e.arn, e.status, string_agg(o.type || ':' || coalesce(o.name, '') || ':' || o.status, ' ' "
                "ORDER BY o.ordinal) FROM durable_execution e JOIN durable_operation o ON o.execution_id = e.id "
                "GROUP BY e.id"
            )
            by_arn = {arn: (status, ops) for arn, status, ops in rows}
            # Every checkpoint of a run without faults is there, in order, succeeded: none was lost.
            expected = by_arn[reference[0]]
            assert expected[0] == "SUCCEEDED" and expected[1].count("SUCCEEDED") >= 3, expected
            assert {arn: by_arn[arn] for arn in arns} == dict.fromkeys(arns, expected)
            with capsys.disabled():
                restarts = {name: part["restarts"] for name, part in parts.items()}
                print(
                    f"\nfault test: database outage 10 s, all executions finished {db_recovery:.1f} s after it; "
                    + (
                        f"broker outage 10 s, finished {broker_recovery:.1f} s after it; "
                        if broker_recovery is not None
                        else "no redis-server here: broker outage skipped; "
                    )
                    + f"restarts by part: {restarts}"
                )
        finally:
            stack.kill()
            if redis_server is not None:
                redis_server.stop()
            db.remove()
    if redis_server is None:
        pytest.skip("the database half passed; the broker half needs a redis-server binary")
