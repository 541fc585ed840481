"""Test set-up: a fresh PostgreSQL database, then a real Celery worker and scheduler process.

The database server is ``DATABASE_URL`` if set (CI: the machine's PostgreSQL), else an
embedded pgserver; the broker is ``CELERY_BROKER_URL`` if set (CI: Redis), else an embedded
Valkey server. Embedded servers live in the session's own temporary folder, never in the
checkout's ``.data`` (a `make run` there is left alone), and a watchdog ends them and every
other process of the session when pytest ends, even by SIGKILL. Nothing is mocked.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

# The browser fixtures (web server, Chromium) serve both the dashboard's and the lab's tests.
pytest_plugins = ["tests.browser.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = os.environ.get("DURABLE_TEST_DB", "durable_lab_test")


def _start_watchdog() -> subprocess.Popen[bytes]:
    """The process that ends this session's processes once pytest is gone (tests/watchdog.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.watchdog", str(os.getpid())],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _start_embedded_servers() -> None:
    """Start the embedded PostgreSQL and broker for what the environment does not name."""
    sys.path.insert(0, str(ROOT))
    from durable_site import embedded

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded.embedded_database_url()
    if not os.environ.get("CELERY_BROKER_URL"):
        os.environ["CELERY_BROKER_URL"] = embedded.embedded_broker_url()


def _prepare_database() -> str:
    """Create a fresh test database on the configured server and return its URL."""
    base = psycopg.conninfo.conninfo_to_dict(os.environ["DATABASE_URL"])
    admin = psycopg.conninfo.make_conninfo(**{**base, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEST_DB}")
    return psycopg.conninfo.make_conninfo(**{**base, "dbname": TEST_DB})


def _dsn_to_url(dsn: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    user = parts.get("user", "postgres")
    host = parts.get("host", "127.0.0.1")
    if host.startswith("/"):
        return f"postgresql://{user}@/{parts['dbname']}?host={host}"
    return f"postgresql://{user}@{host}:{parts.get('port', 5432)}/{parts['dbname']}"


# Runs at import, before Django reads its settings.
TEMP_DIR = Path(tempfile.mkdtemp(prefix="durable-test-"))
TEMP_DIR.chmod(0o755)  # pgserver runs PostgreSQL as its own user, which must reach the data
# Set before durable_site.embedded is imported: its folders follow DURABLE_DATA_DIR.
os.environ["DURABLE_DATA_DIR"] = str(TEMP_DIR / "data")
os.environ["DURABLE_TEST_SESSION"] = str(TEMP_DIR)  # every child inherits it: tests/watchdog.py
WATCHDOG = _start_watchdog()
_start_embedded_servers()
os.environ["DATABASE_URL"] = _dsn_to_url(_prepare_database())
# The project's test handlers, and a folder tests write handler modules into (HANDLER_DIR).
HANDLER_DIR = TEMP_DIR / "handlers"
HANDLER_DIR.mkdir()
os.environ["DURABLE_HANDLER_PATHS"] = f"{ROOT}:{HANDLER_DIR}"
# The test worker's pool size; the lab runs as many comparison variants at once.
WORKER_CONCURRENCY = 4
os.environ["DURABLE_LAB_PARALLEL"] = str(WORKER_CONCURRENCY)
os.environ["DJANGO_SETTINGS_MODULE"] = "durable_site.settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", interactive=False, verbosity=0)
# Pages name their static files through the manifest (hashed names), as under `make run`.
call_command("collectstatic", interactive=False, verbosity=0)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def worker_argv(concurrency: int, hostname: str | None = None) -> list[str]:
    """The command line of a test Celery worker on the ``durable`` queue."""
    argv = [sys.executable, "-m", "celery", "-A", "durable_site", "worker", "-P", "prefork"]
    argv += ["-c", str(concurrency), "-Q", "durable", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return [*argv, *(["-n", hostname] if hostname else []), "-l", "INFO"]


class Stack:
    """The worker and scheduler processes of one test session."""

    def __init__(self) -> None:
        self.worker: subprocess.Popen[str] | None = None
        self.scheduler: subprocess.Popen[str] | None = None
        self.worker_log = TEMP_DIR / "worker.log"
        self.scheduler_log = TEMP_DIR / "scheduler.log"

    def start_worker(self, concurrency: int = WORKER_CONCURRENCY) -> None:
        log = self.worker_log.open("a")
        self.worker = subprocess.Popen(
            worker_argv(concurrency, f"test-{uuid.uuid4().hex[:6]}@%h"),
            cwd=ROOT,
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        _wait_for_log(self.worker_log, "ready.", self.worker)

    def start_scheduler(self) -> None:
        log = self.scheduler_log.open("a")
        self.scheduler = subprocess.Popen(
            [sys.executable, "manage.py", "durable_scheduler"],
            cwd=ROOT,
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        _stop_group(self.worker, sig)
        self.worker = None

    def stop_scheduler(self) -> None:
        _stop_group(self.scheduler, signal.SIGTERM)
        self.scheduler = None

    def worker_pids(self) -> list[int]:
        """Return the worker's pool child pids (the processes that run invocations)."""
        assert self.worker is not None
        out = subprocess.run(["pgrep", "-P", str(self.worker.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]


def _stop_group(proc: subprocess.Popen[str] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_for_log(path: Path, marker: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{marker!r} not seen in {path} within {timeout}s:\n{path.read_text(errors='replace')[-3000:]}")


def _purge_broker() -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "durable_site", "purge", "-f", "-Q", "durable"],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """A running worker (prefork, 2 children) and scheduler, shared by the session."""
    _purge_broker()
    running = Stack()
    running.start_scheduler()
    running.start_worker()
    yield running
    running.stop_worker()
    running.stop_scheduler()


@pytest.fixture
def lam(stack: Stack) -> Any:
    """The engine's boto3-shaped Lambda client, with the real stack running behind it."""
    import engine

    return engine.client()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@contextlib.contextmanager
def temporary_folder(prefix: str = "durable-stack-") -> Iterator[Path]:
    """A folder of its own outside pytest's: pgserver's system user must reach a private data
    folder in it, and pytest closes its own folders to other users whenever a pytest session
    starts (another test run on the machine, or a test's own subprocess session)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_until(predicate: Any, timeout: float = 60, interval: float = 0.1, message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop what the session started now, not when the watchdog notices pytest has gone."""
    from tests.watchdog import end_session

    _forget_pgserver_exit_hooks()
    end_session(os.environ["DURABLE_TEST_SESSION"])
    WATCHDOG.kill()
    WATCHDOG.wait(timeout=10)
    shutil.rmtree(TEMP_DIR / "data", ignore_errors=True)


def _forget_pgserver_exit_hooks() -> None:
    """pgserver's exit hook only logs, to a stream pytest has closed by then."""
    with contextlib.suppress(ImportError):
        from pgserver.postgres_server import PostgresServer

        for server in PostgresServer._instances.values():
            atexit.unregister(server._cleanup)
