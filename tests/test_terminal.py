"""What `make run` and the CLI print: one line per start, end and injected fault, handler output
tagged, no tracebacks or known-harmless warnings; ``-v`` brings the detail back. The stacks are
real (`manage.py durable_up` zero-config, as `make run` starts it, in a private data folder)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from durable_site import terminal
from tests.conftest import temporary_folder
from tests.test_stack_supervisor import ROOT, RunningStack, _wait_for

# Every demo the script starts waits for its end, so the supervisor has seen it in the history.
DEMOS = """
import json, time
import engine
lam = engine.client()
def run(function, payload, name):
    arn = lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload),
                     DurableExecutionName=name)["DurableExecutionArn"]
    for _ in range(300):
        if lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING":
            return
        time.sleep(0.3)
    raise SystemExit(name + " did not end")
"""
HELLO = 'run("hello-steps", {"name": "Ada", "wait_seconds": 1}, "t-hello")\n'
KILL = 'run("lab-scenario", {"fault": {"kind": "kill_body_start"}, "sleep": 0.5}, "t-kill")\n'
TIMEOUT = 'run("replay-not-retry", {"semantics": "AT_MOST_ONCE_PER_RETRY", "retry": "none", "sleep": 5}, "t-timeout")\n'
# Never on the quiet terminal (they were, before: Celery, billiard, the SDK, kombu, platformdirs, pgserver).
NOISE = (
    "Traceback",
    "WorkerLostError",
    "SIGKILL",
    "celery.redirected",
    "XDG_RUNTIME_DIR",
    "remaining pids",
    "No hostname was supplied",
    "superuser privileges",
    "Task durable.run_invocation",
)

pytestmark = pytest.mark.slow


def _zero_config_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DURABLE_VERBOSE"}}
    return {**env, **extra}


def _run_demos(stack: RunningStack, *demos: str) -> None:
    result = stack.manage("shell", "-c", DEMOS + "".join(demos), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_run_prints_one_line_per_start_end_and_fault_and_tags_handler_output() -> None:
    with temporary_folder() as folder:
        stack = RunningStack(folder, _zero_config_env())
        try:
            _run_demos(stack, HELLO, KILL, TIMEOUT)
            _wait_for(lambda: "[replay-not-retry/t-timeout] FAILED" in stack.log(), 30, "the last end line")
            log = stack.log()
            for line in (
                "[hello-steps/t-hello] started",
                "[hello-steps/t-hello] SUCCEEDED after",
                "[lab-scenario/t-kill] started",
                "[lab-scenario/t-kill] invocation 1 was killed (Runtime.ExitError",
                "[lab-scenario/t-kill] SUCCEEDED after",
                "[replay-not-retry/t-timeout] started",
                "[replay-not-retry/t-timeout] invocation 1 timed out (Sandbox.Timedout",
                "[replay-not-retry/t-timeout] FAILED after",
            ):
                assert log.count(line) == 1, (line, log)
            # What the handlers print and log, tagged with their function and execution.
            assert "[replay-not-retry/t-timeout] Execution started." in log, log
            assert "[hello-steps/t-hello] greeting Ada" in log, log
            assert [noise for noise in NOISE if noise in log] == [], log

            # The CLI, with the stack up: no warnings, and it imports neither pgserver nor Celery.
            listed = stack.manage("durable", "list-functions", "--max-items", "1")
            assert listed.returncode == 0 and listed.stderr == "", listed
            modules = _modules_imported_by(stack, "durable", "list-functions")
            assert {"pgserver", "celery", "kombu", "plotly"} & modules == set(), sorted(modules)
        finally:
            stack.kill()


def test_verbose_brings_back_every_log_line() -> None:
    with temporary_folder() as folder:
        stack = RunningStack(folder, _zero_config_env(DURABLE_VERBOSE="1"))
        try:
            _run_demos(stack, KILL)
            _wait_for(lambda: "[lab-scenario/t-kill] SUCCEEDED" in stack.log(), 30, "the end line")
            # Celery logs the lost child from its main process, which may come after the end line:
            # WorkerLostError when the fault's SIGKILL took the child, or its hard time limit's
            # lines when the child outlived the kill until the limit (seen on a loaded machine).
            _wait_for(
                lambda: any(detail in stack.log() for detail in ("WorkerLostError", "Hard time limit")),
                30,
                "the kill's detail",
            )
            log = stack.log()
            assert "Task durable.run_invocation" in log, log  # Celery's own INFO lines
            assert "Traceback" in log, log  # the kill's detail
            assert "[lab-scenario/t-kill] charge body starts" in log, log  # still tagged
        finally:
            stack.kill()


def _modules_imported_by(stack: RunningStack, *args: str) -> set[str]:
    """Top-level packages a manage.py command imports (python -X importtime)."""
    env = {k: v for k, v in stack.env.items() if k != "DURABLE_WORKERS"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in names}


# --- the pieces, without a stack ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["manage.py", "durable", "-v", "list-functions"], True),
        (["manage.py", "durable_up", "--verbose", "--port", "8001"], True),
        (["manage.py", "durable", "list-functions"], False),
        (["manage.py", "migrate", "-v", "2"], False),  # Django's own -v is a level
    ],
)
def test_the_verbose_flag_is_read_before_the_settings(
    argv: list[str], verbose: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(terminal.VERBOSE_ENV, raising=False)
    terminal.note_verbose_flag(argv)
    assert terminal.verbose() is verbose


def test_the_verbose_flag_of_the_cli_is_accepted() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "manage.py", "durable", "-v", "list-functions", "--max-items", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Functions" in json.loads(result.stdout)


def test_history_events_become_one_line_each() -> None:
    started = terminal.describe("ExecutionStarted", {}, "fraud-detection", "tx-1", None)
    assert started == "[fraud-detection/tx-1] started"
    failed = {"Error": {"Payload": {"ErrorType": "mod.exceptions.StepError", "ErrorMessage": "boom\nmore"}}}
    line = terminal.describe(
        "ExecutionFailed", {"ExecutionFailedDetails": failed}, "f", "n", None, timedelta(seconds=2.5)
    )
    assert line == "[f/n] FAILED after 2.5 s: StepError: boom"
    killed = {"Error": {"Payload": {"ErrorType": "Runtime.ExitError", "ErrorMessage": "killed"}}}
    line = terminal.describe("InvocationCompleted", {"InvocationCompletedDetails": killed}, "f", "n", 3)
    assert line == "[f/n] invocation 3 was killed (Runtime.ExitError: killed)"
    assert terminal.describe("InvocationCompleted", {"InvocationCompletedDetails": {}}, "f", "n", 1) is None


def test_the_quiet_filter_keeps_warnings_and_handler_output_only(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = terminal.QuietFilter()

    def record(name: str, level: int, **extra: object) -> logging.LogRecord:
        made = logging.LogRecord(name, level, __file__, 1, "message", (), None)
        made.__dict__.update(extra)
        return made

    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert not quiet.filter(record("celery.app.trace", logging.INFO))
    assert not quiet.filter(record("pgserver", logging.INFO))
    assert quiet.filter(record("engine.scheduler", logging.WARNING))
    assert quiet.filter(record("durable.activity", logging.INFO))
    arn = "arn:aws:lambda:us-east-1:1:function:hello-steps:$LATEST/durable-execution/run-1/abc"
    handler_log = record("root", logging.INFO, executionArn=arn)
    assert quiet.filter(handler_log)
    assert terminal.TerminalFormatter().format(handler_log).endswith(" [hello-steps/run-1] message")
    # The SDK's own "Execution failed" traceback: the execution's end line carries the error.
    assert not quiet.filter(record("aws_durable_execution_sdk_python.execution", logging.ERROR))


def test_tagged_stdout_never_fails_a_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A handler may print what the terminal cannot encode (tests/handlers/poison.py): escaped."""
    target = (tmp_path / "out.txt").open("w", encoding="utf-8")
    stdout = terminal.TaggedStdout(target)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "poison")
    monkeypatch.setattr(terminal, "_current_execution", {"id": None, "tag": None})
    print("printed a\x00b \ud800", file=stdout)
    print("plain", end="", file=stdout)
    print(" end", file=stdout)
    target.close()
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["[poison] printed a\x00b \\ud800", "[poison] plain end"]
