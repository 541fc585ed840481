"""Python handlers from a zip, run out of process by the real worker, checkpointing over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.wire.conftest import callback_id, finished, history

STEP_WAIT_CALLBACK = """
import os
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


@durable_execution
def handler(event, context: DurableContext):
    print("runs in", os.getpid(), "with", os.environ.get("GREETING"))
    doubled = context.step(lambda _: event["n"] * 2, name="double")
    context.wait(Duration.from_seconds(1), name="pause")
    callback = context.create_callback(name="approval")
    answer = callback.result()
    return {"doubled": doubled, "answer": answer, "pid": os.getpid()}
"""


def test_zipped_handler_with_step_wait_and_callback_runs_out_of_process(lambda_client: Any, code_function: Any) -> None:
    name = code_function({"app.py": STEP_WAIT_CALLBACK}, Environment={"Variables": {"GREETING": "hi"}})
    config = lambda_client.get_function(FunctionName=name)["Configuration"]
    assert config["Runtime"] == "python3.11" and config["CodeSize"] > 0 and config["CodeSha256"]

    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 21}')["DurableExecutionArn"]
    lambda_client.send_durable_execution_callback_success(CallbackId=callback_id(lambda_client, arn), Result=b'"yes"')
    described = finished(lambda_client, arn)
    assert described["Status"] == "SUCCEEDED", described
    result = json.loads(described["Result"])
    assert result["doubled"] == 42 and result["answer"] in ("yes", '"yes"')
    assert result["pid"] != os.getpid()
    steps = [(e["EventType"], e.get("Name")) for e in history(lambda_client, arn) if e["EventType"].startswith("Step")]
    assert steps == [("StepStarted", "double"), ("StepSucceeded", "double")]
    # The child's stdout is the invocation's log, and the function's variables are its environment.
    from engine.contrib.django.models import LogLine

    lines = LogLine.objects.filter(execution__arn=arn, logger="stdout").values_list("message", flat=True)
    assert any(line.startswith("runs in") and line.endswith("with hi") for line in lines), list(lines)


def test_import_error_fails_the_execution_at_once(lambda_client: Any, code_function: Any) -> None:
    name = code_function({"app.py": "import not_a_module_anywhere\n"})
    started = time.monotonic()
    response = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert time.monotonic() - started < 20
    assert response.get("FunctionError") == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError", error
    assert "not_a_module_anywhere" in error["errorMessage"]


def test_missing_handler_export_is_handler_not_found(lambda_client: Any, code_function: Any) -> None:
    name = code_function({"app.py": "def other(event, context):\n    return 1\n"})
    error = json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.HandlerNotFound", error


def test_runtime_that_cannot_start_fails_fast(lambda_client: Any, code_function: Any) -> None:
    name = code_function(
        {"app.py": STEP_WAIT_CALLBACK}, Environment={"Variables": {"DURABLE_PYTHON": "/nonexistent/bin/python"}}
    )
    error = json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.InvalidEntrypoint", error


def test_handler_that_exits_before_ready_fails_fast_and_garbage_output_is_only_log(
    lambda_client: Any, code_function: Any
) -> None:
    name = code_function({"app.py": "import os\nprint('garbage {{{')\nos._exit(3)\n"})
    error = json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.InitError", error
    assert "exit status 3" in error["errorMessage"]


NOISY = """
import sys
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    print('{"output": "not me"}')
    print("]]] garbage", file=sys.stderr)
    return context.step(lambda _: "fine", name="only")
"""


def test_a_handler_printing_protocol_lookalikes_cannot_forge_its_answer(lambda_client: Any, code_function: Any) -> None:
    name = code_function({"app.py": NOISY})
    response = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == "fine"


FORGER = """
import os
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    os.write(3, b"garbage that is no answer\\n")
    return {"never": "read"}
"""


def test_garbage_on_the_answer_pipe_fails_the_execution_at_once(lambda_client: Any, code_function: Any) -> None:
    name = code_function({"app.py": FORGER})
    error = json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.InvalidResponse", error


def test_nodejs_without_a_node_binary_fails_fast(lambda_client: Any, code_function: Any) -> None:
    from engine.runtimes import node

    try:
        node.command()
        pytest.skip("this checkout has a Node binary")
    except node.NodeRuntimeMissing:
        pass
    source = "export const handler = async () => ({Status: 'SUCCEEDED'});"
    name = code_function({"index.mjs": source}, handler="index.handler", Runtime="nodejs22.x")
    error = json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.InvalidRuntime" and "DURABLE_NODE" in error["errorMessage"], error


SLEEPER = """
import os, time
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    with open(event["pidfile"], "w") as out:
        out.write(str(os.getpid()))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return context.step(lambda _: "done", name="after")
"""


def _child_pid(pidfile: Path) -> int:
    return int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=30, message="runtime pid"))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie until its parent reaps it: dead all the same.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return state.startswith("Z") or not state


def test_timeout_kills_the_runtime_process(lambda_client: Any, code_function: Any, tmp_path: Path) -> None:
    import engine

    name = code_function({"app.py": SLEEPER}, Timeout=2)
    # Not in botocore's model: set through the engine's client (the same database).
    engine.client().update_function_configuration(FunctionName=name, InvocationRetryPolicy={"MaximumAttempts": 1})
    pidfile = tmp_path / "pid"
    payload = json.dumps({"pidfile": str(pidfile), "sleep": 60}).encode()
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["DurableExecutionArn"]
    pid = _child_pid(pidfile)
    described = finished(lambda_client, arn, timeout=30)
    assert described["Status"] == "FAILED"
    assert described["Error"]["ErrorType"] == "Sandbox.Timedout", described
    from engine.contrib.django.models import Invocation

    outcomes = set(Invocation.objects.filter(execution__arn=arn).values_list("outcome", flat=True))
    assert outcomes == {"timed_out"}, outcomes  # as the in-worker path records a Timeout, not "failed"
    wait_until(lambda: _gone(pid), timeout=10, message="the runtime process to die")


def test_sigkilled_runtime_is_exit_error_and_the_execution_recovers(
    lambda_client: Any, code_function: Any, tmp_path: Path
) -> None:
    name = code_function({"app.py": SLEEPER})
    pidfile = tmp_path / "pid"
    payload = json.dumps({"pidfile": str(pidfile), "sleep": 3}).encode()
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["DurableExecutionArn"]
    os.kill(_child_pid(pidfile), signal.SIGKILL)
    described = finished(lambda_client, arn, timeout=60)
    assert described["Status"] == "SUCCEEDED", described
    from engine.contrib.django.models import Invocation

    rows = list(Invocation.objects.filter(execution__arn=arn).order_by("seq").values_list("outcome", "error"))
    outcomes, errors = [outcome for outcome, _ in rows], [error for _, error in rows]
    assert errors[0]["ErrorType"] == "Runtime.ExitError" and "signal 9" in errors[0]["ErrorMessage"], errors
    assert outcomes[0] == "crashed", outcomes  # as a worker child's death is recorded
    assert errors[-1] is None


OTHER_SDK = "2.1.0"  # the project runs 3.0.0


@pytest.fixture(scope="session")
def other_sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment of its own, with another version of the SDK from PyPI (~35 s here)."""
    venv = tmp_path_factory.mktemp("other-sdk") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"aws-durable-execution-sdk-python=={OTHER_SDK}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        pytest.skip(f"pip could not install the SDK {OTHER_SDK} (no package index?): {installed.stderr[-500:]}")
    return python


OTHER_SDK_HANDLER = """
import sys
from importlib.metadata import version
from aws_durable_execution_sdk_python import durable_execution
from aws_durable_execution_sdk_python.config import Duration


@durable_execution
def handler(event, context):
    sdk = context.step(lambda _: version("aws-durable-execution-sdk-python"), name="which")
    context.wait(Duration.from_seconds(1), name="pause")
    return {"sdk": sdk, "prefix": sys.prefix}
"""


def test_handler_runs_in_its_own_virtualenv_with_another_sdk_version(
    lambda_client: Any, code_function: Any, other_sdk_python: Path
) -> None:
    variables = {"DURABLE_PYTHON": str(other_sdk_python)}
    name = code_function({"app.py": OTHER_SDK_HANDLER}, Environment={"Variables": variables})
    response = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response, response["Payload"].read()
    result = json.loads(response["Payload"].read())
    assert result == {"sdk": OTHER_SDK, "prefix": str(other_sdk_python.parent.parent)}


PID = """
import os
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    return context.step(lambda _: os.getpid(), name="pid")
"""


def test_warm_runtime_processes_serve_later_executions(
    lambda_client: Any, code_function: Any, runtime_stack: Any
) -> None:
    name = code_function({"app.py": PID})
    pids = [json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) for _ in range(5)]
    # One warm process per worker child at most (each child keeps its own pool), not one per execution.
    assert len(set(pids)) <= len(runtime_stack.worker_pids()) < len(pids), pids


RECORDED = """
from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from durable_lab import EffectError, record_effect
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

RETRY_ONCE = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(max_attempts=2, initial_delay=Duration.from_seconds(1), jitter_strategy=JitterStrategy.NONE)
    )
)


@durable_execution
def handler(event, context: DurableContext):
    def charge(step: StepContext) -> str:
        print("charging, attempt", step.attempt)
        record_effect("payment", "order-1")
        try:
            record_effect("payment", "")
        except EffectError as refused:
            print("refused:", refused)
        if step.attempt == 1:
            raise RuntimeError("the card service is down")
        return "charged"

    charged = context.step(charge, name="charge", config=RETRY_ONCE)
    shipped = context.step(lambda _: "shipped", name="ship")
    return [charged, shipped]
"""


def _body_runs(arn: str) -> list[tuple[str | None, int, int, str]]:
    from engine.contrib.django.models import BodyRun

    runs = BodyRun.objects.filter(execution__arn=arn).order_by("started_at")
    return list(runs.values_list("name", "invocation_seq", "attempt", "outcome"))


def test_step_bodies_out_of_process_are_recorded_as_in_the_worker(lambda_client: Any, code_function: Any) -> None:
    """The runtime's own SDK reports each step body's start and end (its plugin interface):
    the body runs, attempts and log lines are the engine's record, as for an in-worker handler."""
    name = code_function({"app.py": RECORDED})
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    described = finished(lambda_client, arn, timeout=60)
    assert described["Status"] == "SUCCEEDED", described
    assert _body_runs(arn) == [("charge", 1, 1, "failed"), ("charge", 2, 2, "succeeded"), ("ship", 2, 1, "succeeded")]
    from engine.contrib.django.models import LogLine, Operation

    charge_id = Operation.objects.get(execution__arn=arn, name="charge").op_id
    lines = LogLine.objects.filter(execution__arn=arn, logger="stdout", message__startswith="charging")
    assert sorted(lines.values_list("message", "op_id")) == [
        ("charging, attempt 1", charge_id),
        ("charging, attempt 2", charge_id),
    ]
    # Its side effects are counted as an in-worker handler's are: the retry charged again.
    from engine.contrib.django.models import Effect

    effects = Effect.objects.filter(execution__arn=arn).order_by("at")
    assert list(effects.values_list("kind", "op_id", "invocation_seq", "attempt", "duplicate")) == [
        ("payment", charge_id, 1, 1, False),
        ("payment", charge_id, 2, 2, True),
    ]
    refused = LogLine.objects.filter(execution__arn=arn, message__startswith="refused: kind")
    assert refused.count() == 2  # a bad argument is the handler's error, and nothing is stored


def test_an_armed_fault_kills_the_runtime_process_inside_the_step_body(
    lambda_client: Any, code_function: Any, tmp_path: Path
) -> None:
    """Armed while the invocation runs, fired at the step body's start: the runtime process dies
    there (its body cut short, as a killed worker's is), the invocation is recorded killed at
    once, and the next one runs the body to its end."""
    from engine import faults

    name = code_function({"app.py": SLEEPER})
    pidfile = tmp_path / "pid"
    payload = json.dumps({"pidfile": str(pidfile), "sleep": 2}).encode()
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["DurableExecutionArn"]
    pid = _child_pid(pidfile)  # sleeping before its step
    faults.arm(arn, "after", "body_start", user="tester")
    described = finished(lambda_client, arn, timeout=60)
    assert described["Status"] == "SUCCEEDED", described
    assert _gone(pid)
    from engine.contrib.django.models import Fault, Invocation

    rows = list(Invocation.objects.filter(execution__arn=arn).order_by("seq").values_list("outcome", "error"))
    assert [outcome for outcome, _ in rows] == ["killed", "succeeded"], rows
    assert rows[0][1] == {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Invocation was killed by fault injection"}
    fault = Fault.objects.get(execution__arn=arn)
    assert fault.fired_at is not None and fault.invocation_seq == 1
    assert _body_runs(arn) == [("after", 1, 1, "interrupted"), ("after", 2, 1, "succeeded")]


PLAIN_PY = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("no such order")
    return {"echo": event, "request": context.aws_request_id}
"""

PLAIN_TS = """
export const handler = async (event: { n: number }) => ({ doubled: event.n * 2, pid: process.pid });
"""

INVOKES_PLAIN = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def handler(event, context: DurableContext):
    return context.invoke(event["target"], {"n": 21})
"""


def _plain_function(lambda_client: Any, files: dict[str, str], runtime: str, handler: str) -> str:
    """A plain (non-durable) function with its own code: no DurableConfig."""
    from tests.runtimes.conftest import ROLE, zipped

    name = f"plain-{uuid.uuid4().hex[:10]}"
    lambda_client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": zipped(files)}, Timeout=10
    )
    return name


def test_a_plain_function_with_its_own_code_answers_in_its_runtime_process(
    lambda_client: Any, code_function: Any
) -> None:
    """Lambda's ordinary functions, from a zip: a synchronous call's answer and its error, an
    event's run, and a durable function's chained invoke of one (in Node)."""
    python = _plain_function(lambda_client, {"app.py": PLAIN_PY}, "python3.12", "app.handler")
    answer = lambda_client.invoke(FunctionName=python, Payload=b'{"order": 7}')
    assert "FunctionError" not in answer
    body = json.loads(answer["Payload"].read())
    assert body["echo"] == {"order": 7} and body["request"]
    failed = lambda_client.invoke(FunctionName=python, Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such order")

    node = _plain_function(lambda_client, {"index.ts": PLAIN_TS}, "nodejs22.x", "index.handler")
    invoker = code_function({"app.py": INVOKES_PLAIN})
    payload = json.dumps({"target": node}).encode()
    arn = lambda_client.invoke(FunctionName=invoker, InvocationType="Event", Payload=payload)["DurableExecutionArn"]
    described = finished(lambda_client, arn, timeout=60)
    assert described["Status"] == "SUCCEEDED", described
    result = json.loads(described["Result"])
    assert result["doubled"] == 42 and result["pid"] != os.getpid()
