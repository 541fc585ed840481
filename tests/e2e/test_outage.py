"""A PostgreSQL outage is waited out: the scheduler and the worker stay up and carry on after it.

The test starts a PostgreSQL server of its own (pgserver, in a temporary folder) with its own
scheduler and worker processes and a file-system broker, so that stopping that server touches
nobody else's database.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_until, worker_argv
from tests.e2e.private_server import PrivateServer, private_server, query, run_script, spawn, stop

OUTAGE_SECONDS = 5.0
WAIT_SECONDS = 3  # the handler's wait comes due while the server is down


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[PrivateServer, dict[str, str]]]:
    with private_server(tmp_path) as (server, env):
        yield server, env


START_SCRIPT = """
import json, sys
import engine
client = engine.client()
client.create_function(FunctionName="outage", Handler="tests.handlers.engine_pg.long_wait", Timeout=30,
                       DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1})
answer = client.invoke(FunctionName="outage", InvocationType="Event", Payload=json.dumps({"seconds": int(sys.argv[1])}))
print(answer["DurableExecutionArn"])
"""


def test_the_scheduler_and_worker_wait_out_a_database_outage(
    private: tuple[PrivateServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = private
    scheduler_log, worker_log = tmp_path / "scheduler.log", tmp_path / "worker.log"
    scheduler = spawn([sys.executable, str(ROOT / "manage.py"), "durable_scheduler"], env, scheduler_log)
    worker = spawn(
        worker_argv(1),
        env,
        worker_log,
    )
    try:
        wait_until(lambda: "ready." in worker_log.read_text(errors="replace"), timeout=60, message="the worker")
        arn = run_script(START_SCRIPT, str(WAIT_SECONDS), env=env, cwd=tmp_path).strip().splitlines()[-1]
        wait_until(
            lambda: query(server.url, "SELECT count(*) FROM durable_timer WHERE kind = 'wait'") == 1,
            timeout=60,
            message="the handler to start its wait",
        )
        server.stop()
        time.sleep(OUTAGE_SECONDS)
        assert scheduler.poll() is None, scheduler_log.read_text(errors="replace")[-3000:]
        server.start()
        wait_until(
            lambda: query(server.url, "SELECT status FROM durable_execution WHERE arn = %s", arn) == "SUCCEEDED",
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
        result = query(server.url, "SELECT result FROM durable_execution WHERE arn = %s", arn)
        assert json.loads(result) == "woke"
    finally:
        stop(scheduler)
        stop(worker)
