"""A PostgreSQL outage is waited out: the scheduler and the worker stay up and carry on after it.

The test starts a PostgreSQL server of its own (pgserver, in a temporary folder) with its own
scheduler and worker processes and a file-system broker, so that stopping that server touches
nobody else's database.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT, temporary_folder, wait_until, worker_argv

OUTAGE_SECONDS = 5.0
WAIT_SECONDS = 3  # the handler's wait comes due while the server is down


class PrivateServer:
    """A pgserver PostgreSQL in ``folder`` that the test may stop and start at will."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode=None)
        self.server.psql("CREATE DATABASE outage")
        self.url = self.server.get_uri("outage")

    def stop(self) -> None:
        from pgserver._commands import pg_ctl  # runs pg_ctl as pgserver's own system user (root cannot)

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.start()  # a failed test may have left it stopped: stop it cleanly
        self.stop()
        atexit.unregister(self.server._cleanup)  # pgserver's exit hook only logs, to a stream pytest has closed


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[PrivateServer, dict[str, str]]]:
    with temporary_folder("durable-outage-") as folder:
        yield from _private_server(folder, tmp_path)


def _private_server(folder: Path, tmp_path: Path) -> Iterator[tuple[PrivateServer, dict[str, str]]]:
    server = PrivateServer(folder / "pg")
    env = {
        **os.environ,
        "DATABASE_URL": server.url,
        "CELERY_BROKER_URL": "filesystem://",
        "DURABLE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    try:
        yield server, env
    finally:
        server.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # In the log's folder: the file-system broker writes a control folder into the current one.
    return subprocess.Popen(
        args, cwd=log.parent, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


START_SCRIPT = """
import json, sys, django
django.setup()
import engine
client = engine.client()
client.create_function(FunctionName="outage", Handler="tests.handlers.engine_pg.long_wait", Timeout=30,
                       DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1})
answer = client.invoke(FunctionName="outage", InvocationType="Event", Payload=json.dumps({"seconds": int(sys.argv[1])}))
print(answer["DurableExecutionArn"])
"""


def _query(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def test_the_scheduler_and_worker_wait_out_a_database_outage(
    private: tuple[PrivateServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = private
    scheduler_log, worker_log = tmp_path / "scheduler.log", tmp_path / "worker.log"
    scheduler = _spawn([sys.executable, str(ROOT / "manage.py"), "durable_scheduler"], env, scheduler_log)
    worker = _spawn(
        worker_argv(1),
        env,
        worker_log,
    )
    try:
        wait_until(lambda: "ready." in worker_log.read_text(errors="replace"), timeout=60, message="the worker")
        arn = (
            subprocess.run(
                [sys.executable, "-c", START_SCRIPT, str(WAIT_SECONDS)],
                cwd=tmp_path,
                env={**env, "DJANGO_SETTINGS_MODULE": "durable_site.settings"},
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        wait_until(
            lambda: _query(server.url, "SELECT count(*) FROM durable_timer WHERE kind = 'wait'") == 1,
            timeout=60,
            message="the handler to start its wait",
        )
        server.stop()
        time.sleep(OUTAGE_SECONDS)
        assert scheduler.poll() is None, scheduler_log.read_text(errors="replace")[-3000:]
        server.start()
        wait_until(
            lambda: _query(server.url, "SELECT status FROM durable_execution WHERE arn = %s", arn) == "SUCCEEDED",
            timeout=90,
            message="the execution to finish after the outage",
        )
        assert scheduler.poll() is None and worker.poll() is None
        # The execution may end before the scheduler's backed-off next try notices the server is back.
        wait_until(
            lambda: "database available again after" in scheduler_log.read_text(errors="replace"),
            timeout=30,
            message="the scheduler to log the end of the outage",
        )
        logged = scheduler_log.read_text(errors="replace")
        assert logged.count("database unavailable, waiting for it") == 1, logged[-3000:]
        result = _query(server.url, "SELECT result FROM durable_execution WHERE arn = %s", arn)
        assert json.loads(result) == "woke"
    finally:
        _stop(scheduler)
        _stop(worker)
