"""A PostgreSQL crash loses only what the engine let it lose, and breaks no promise.

Checkpoints that only end steps commit without waiting for the disk (``DURABLE_ASYNC_COMMIT``,
on by default; see ``machine.may_be_lost_in_a_crash``). The handler
(``tests.handlers.engine_pg.crash_mid_run``) crashes the test's own server twice with SIGQUIT
(an immediate shutdown: WAL that no disk has yet is lost, as in a power cut):

- right after three at-least-once steps: the last one's end was committed asynchronously and
  is lost; its body runs again, as at-least-once allows;
- inside an at-most-once step's body: its START went to disk before the body ran, so the body is
  not run again in the same attempt; the step is interrupted and its retry runs as attempt 2.

The server's WAL writer is slowed to its maximum (10 s) so that nothing but a durable commit
flushes an asynchronous one: the loss is certain, not a matter of timing.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_until, worker_argv
from tests.e2e.private_server import PrivateServer, private_server, query, run_script, spawn, stop

START_SCRIPT = """
import sys
import engine
client = engine.client()
client.create_function(FunctionName="crash", Handler="tests.handlers.engine_pg.crash_mid_run", Timeout=60,
                       DurableConfig={"ExecutionTimeout": 600, "RetentionPeriodInDays": 1})
answer = client.invoke(FunctionName="crash", InvocationType="Event", Payload=sys.argv[1])
print(answer["DurableExecutionArn"])
"""

VIOLATIONS_SCRIPT = """
import sys
from engine import invariants, timeline
print("\\n".join(invariants.violations(timeline.execution_timeline(sys.argv[1]))))
"""


def _restart_after_crash(server: PrivateServer, marker: Path) -> None:
    """Once the handler has crashed the server (its marker is written and the server is down),
    start it again: PostgreSQL recovers from its WAL."""
    wait_until(marker.exists, timeout=120, message=f"the handler to crash the database ({marker.name})")
    wait_until(lambda: not server.is_running(), timeout=30, message="the database to go down")
    server.start()


@pytest.mark.parametrize("async_commit", ["on", "off"])
def test_a_database_crash_loses_only_step_ends_and_breaks_no_promise(tmp_path: Path, async_commit: str) -> None:
    ledger = tmp_path / "ledger.txt"
    with private_server(tmp_path) as (server, env):
        server.set_wal_writer_delay("10s")
        env = {**env, "DURABLE_ASYNC_COMMIT": async_commit, "DURABLE_JOURNAL_SHIP_MS": "0"}
        scheduler = spawn([sys.executable, str(ROOT / "manage.py"), "durable_scheduler"], env, tmp_path / "sched.log")
        worker = spawn(worker_argv(1), env, tmp_path / "worker.log")
        try:
            wait_until(lambda: "ready." in (tmp_path / "worker.log").read_text(errors="replace"), timeout=60)
            payload = {"ledger": str(ledger), "postmaster_pid_file": str(server.postmaster_pid_file)}
            arn = run_script(START_SCRIPT, json.dumps(payload), env=env, cwd=tmp_path).strip().splitlines()[-1]
            _restart_after_crash(server, Path(f"{ledger}.between-steps"))
            _restart_after_crash(server, Path(f"{ledger}.in-charge"))
            wait_until(
                lambda: query(server.url, "SELECT status FROM durable_execution WHERE arn = %s", arn) == "SUCCEEDED",
                timeout=120,
                message="the execution to succeed after both crashes",
            )
        finally:
            stop(worker)
            stop(scheduler)
        runs = Counter(ledger.read_text().splitlines())
        # Promises: an at-most-once body ran once per attempt; the execution's result is its own.
        assert runs["charge attempt 1"] == 1 and runs["charge attempt 2"] == 1, runs
        assert json.loads(query(server.url, "SELECT result FROM durable_execution WHERE arn = %s", arn)) == "charged"
        # What the crash lost: the asynchronously committed end of the last step before it.
        assert runs["before-2"] == (2 if async_commit == "on" else 1), runs
        assert all(runs[f"before-{i}"] in (1, 2) for i in range(2)), runs
        if async_commit == "off":
            assert all(runs[f"before-{i}"] == 1 for i in range(3)), runs
        history = query(
            server.url,
            "SELECT string_agg(event_type || coalesce(':' || (doc->>'Name'), ''), ',' ORDER BY event_id)"
            " FROM durable_event e JOIN durable_execution x ON x.id = e.execution_id WHERE x.arn = %s",
            arn,
        )
        assert history.count("StepSucceeded:before-2") == 1, history
        # The pages tell what happened: both crashed invocations, each body run where it ran.
        found = run_script(VIOLATIONS_SCRIPT, arn, env=env, cwd=ROOT).strip()
        assert found == "", found
