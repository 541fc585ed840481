"""A PostgreSQL server of a test's own (pgserver, in a folder outside pytest's), with the
scheduler and worker processes that use it: a test may stop it, or crash it, and touch nobody
else's database."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import ROOT, temporary_folder


class PrivateServer:
    """A pgserver PostgreSQL in ``folder`` that the test may stop and start at will."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode=None)
        self.server.psql("CREATE DATABASE private")
        self.url = self.server.get_uri("private")

    def stop(self) -> None:
        from pgserver._commands import pg_ctl  # runs pg_ctl as pgserver's own system user (root cannot)

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    @property
    def postmaster_pid_file(self) -> Path:
        return Path(self.server.pgdata) / "postmaster.pid"

    def is_running(self) -> bool:
        try:
            pid = int(self.postmaster_pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
            return False
        return True

    def set_wal_writer_delay(self, delay: str) -> None:
        """How long PostgreSQL's WAL writer waits between flushes of asynchronous commits."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET wal_writer_delay = '{delay}'")
            conn.execute("SELECT pg_reload_conf()")

    def close(self) -> None:
        self.start()  # a failed test may have left it stopped: stop it cleanly
        self.stop()
        atexit.unregister(self.server._cleanup)  # pgserver's exit hook only logs, to a stream pytest has closed


@contextmanager
def private_server(tmp_path: Path) -> Iterator[tuple[PrivateServer, dict[str, str]]]:
    """A migrated private server, and the environment of processes that use it."""
    with temporary_folder("durable-private-pg-") as folder:
        server = PrivateServer(folder / "pg")
        try:
            yield server, _migrated(server, tmp_path)
        finally:
            server.close()


def _migrated(server: PrivateServer, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": server.url,
        "CELERY_BROKER_URL": "filesystem://",
        "DURABLE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # In the log's folder: the file-system broker writes a control folder into the current one.
    return subprocess.Popen(
        args, cwd=log.parent, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


def query(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def run_script(script: str, *args: str, env: dict[str, str], cwd: Path) -> str:
    """Run a Python ``script`` with Django set up, against the private server; return its output."""
    done = subprocess.run(
        [sys.executable, "-c", f"import django\ndjango.setup()\n{script}", *args],
        cwd=cwd,
        env={**env, "DJANGO_SETTINGS_MODULE": "durable_site.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout
