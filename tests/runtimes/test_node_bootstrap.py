"""The Node runtime's bootstrap (engine/runtimes/node/bootstrap.mjs), driven as the worker's
out-of-process invoker drives it: spawned with a pipe on file descriptor 3, one JSON request per
line on stdin, one JSON response per line on fd 3.

The handlers are TypeScript on AWS's unchanged ``@aws/durable-execution-sdk-js``; their checkpoints
go over HTTP to the real wire server, signed with a real access key. The executions are real,
created through the engine; the test claims each invocation and reports its end with the engine's
own duties, as the worker does. For those, the scheduler is stopped (its worker would run the
function in process, as Python), so the test fires the wait's timer itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.timers import fire_due_timers
from engine.invoker import build_event
from engine.runtimes import node
from tests.conftest import wait_until
from tests.engine.support import Recorder, Register, callback_ids, start
from tests.wire.conftest import credentials

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0

STEP_AND_WAIT = """
import { withDurableExecution } from '@aws/durable-execution-sdk-js';
import type { DurableContext } from '@aws/durable-execution-sdk-js';

type Greeting = { name: string };

export const handler = withDurableExecution(async (event: Greeting, context: DurableContext) => {
  console.log('{"ready": false, "output": "handler garbage on stdout"');
  process.stderr.write('}}} more garbage on stderr\\n');
  const greeting: string = await context.step('greet', async () => `hello ${event.name}`);
  await context.wait('pause', { seconds: 1 });
  return greeting;
});
"""

PLAIN = """
let calls = 0;
export const handler = async (event, context) => {
  calls += 1;
  return { calls, pid: process.pid, requestId: context.awsRequestId, remaining: context.getRemainingTimeInMillis() };
};
"""


class RuntimeProcess:
    """One runtime process, started and spoken to as the invoker does."""

    def __init__(
        self, code_dir: Path, handler: str, env: dict[str, str] | None = None, log_dir: Path | None = None
    ) -> None:
        responses, self._their_end = os.pipe()
        self.logs = (log_dir or code_dir) / f"{handler}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            **(env or {}),
        }
        with self.logs.open("w") as log:
            self.proc = subprocess.Popen(
                node.command(),
                cwd=code_dir,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=False,
                preexec_fn=self._responses_on_fd3,
            )
        os.close(self._their_end)
        # Unbuffered: select() must see every line not yet read (a record and what follows it).
        self.responses = os.fdopen(responses, "rb", buffering=0)
        self.records: list[dict[str, Any]] = []  # the step bodies' records, each answered as the invoker does

    def _responses_on_fd3(self) -> None:  # runs in the child, between fork and exec
        os.dup2(self._their_end, 3)

    def response(self, timeout: float) -> dict[str, Any]:
        """The next response that is not a record (records are answered meanwhile)."""
        while True:
            ready, _, _ = select.select([self.responses], [], [], timeout)
            assert ready, f"no response on fd 3 within {timeout} s; log:\n{self.logs.read_text()}"
            response = self._line()
            if response is not None:
                return response

    def _line(self) -> dict[str, Any] | None:
        """Read one line; answer it and return None if it is a step body's record."""
        line = self.responses.readline()
        assert line, f"fd 3 closed (exit {self.proc.poll()}); log:\n{self.logs.read_text()}"
        response = dict(json.loads(line))
        if "record" not in response:
            return response
        self.records.append(response["record"])
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"continue":true}\n')
        self.proc.stdin.flush()
        return None

    def pump(self, seconds: float) -> list[dict[str, Any]]:
        """Answer the records that come within ``seconds``; return the responses that are not records."""
        responses, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and select.select([self.responses], [], [], left)[0]:
            response = self._line()
            if response is not None:
                responses.append(response)
        return responses

    def send(self, event: Any, context: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"event": event, "context": context}).encode() + b"\n")
        self.proc.stdin.flush()

    def invoke(self, event: Any, context: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.send(event, context)
        return self.response(timeout)

    def close(self) -> int:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # EOF: the runtime exits
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.responses.close()


@pytest.fixture
def runtimes() -> Iterator[list[RuntimeProcess]]:
    started: list[RuntimeProcess] = []
    yield started
    for runtime in started:
        runtime.close()


def write_code(code_dir: Path, file: str, source: str) -> Path:
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / file).write_text(source)
    return code_dir


def invocation(ticket: Ticket) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request line's event and context for a claimed invocation, as the worker builds them."""
    event = dict(build_event(ticket).to_json_dict())
    context = {
        "awsRequestId": ticket.request_id,
        "functionName": ticket.function["name"],
        "deadlineMs": int(ticket.deadline.timestamp() * 1000),
        "tenantId": None,
    }
    return event, context


def md5_16(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()[:16]


def run(runtime: RuntimeProcess, ticket: Ticket) -> dict[str, Any]:
    """Run the claimed invocation in the runtime and record its end with the engine's end duty."""
    response = runtime.invoke(*invocation(ticket))
    output, raised = response.get("output"), response.get("error")
    raised = raised and {"ErrorType": raised["errorType"], "ErrorMessage": raised["errorMessage"]}
    complete_invocation(ticket, output, raised)
    return response


def wire_environment(wire_server: str, function_name: str) -> dict[str, str]:
    """What the invoker gives the runtime so that the SDK's default LambdaClient reaches Durable Lab."""
    keys = credentials()
    return {
        "AWS_ENDPOINT_URL_LAMBDA": wire_server,
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
    }


@pytest.mark.usefixtures("no_scheduler")
def test_a_typescript_handler_steps_waits_and_succeeds_out_of_process(
    client: engine.LambdaClient, functions: Register, recorder: Recorder, wire_server: str, tmp_path: Path
) -> None:
    name = functions("index.handler", timeout=30)
    arn = start(client, name, json.dumps({"name": "Ada"}))
    code = write_code(tmp_path / "code", "index.ts", STEP_AND_WAIT)
    runtime = RuntimeProcess(code, "index.handler", wire_environment(wire_server, name))
    assert runtime.response(READY_TIMEOUT) == {"ready": True}

    first = claim_invocation(recorder.invoked[-1])
    assert first is not None and first.arn == arn
    assert run(runtime, first) == {"output": {"Status": "PENDING"}}
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    # The step's body ran once, and the SDK's plugin hooks said so (record_plugin.mjs).
    assert runtime.records == [
        {"t": "body_start", "op_id": md5_16("1"), "name": "greet", "attempt": 1},
        {"t": "body_end", "op_id": md5_16("1"), "name": "greet", "outcome": "succeeded"},
    ]

    woken = wait_until(lambda: fire_due_timers() or None, timeout=30, message="the 1 s wait to end")
    assert woken == 1
    second = claim_invocation(recorder.invoked[-1])
    assert second is not None and second.seq == first.seq + 1
    assert run(runtime, second) == {"output": {"Status": "SUCCEEDED", "Result": '"hello Ada"'}}
    assert len(runtime.records) == 2, "a replayed step's body does not run again"
    assert runtime.proc.poll() is None, "the runtime stays warm between invocations"

    described = client.get_durable_execution(DurableExecutionArn=arn)
    assert (described["Status"], described["Result"]) == ("SUCCEEDED", '"hello Ada"')
    events = client.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)["Events"]
    by_type = {event["EventType"]: event for event in events}
    assert by_type["StepSucceeded"]["Name"] == "greet"
    assert by_type["StepSucceeded"]["StepSucceededDetails"]["Result"]["Payload"] == '"hello Ada"'
    assert by_type["WaitSucceeded"]["Name"] == "pause"
    # The JS SDK's operation ids (MD5 of the operation's position, 16 hex digits) are taken as they are.
    assert by_type["StepSucceeded"]["Id"] == md5_16("1") and by_type["WaitSucceeded"]["Id"] == md5_16("2")
    assert [e["EventType"] for e in events].count("InvocationCompleted") == 2

    assert runtime.close() == 0
    log = runtime.logs.read_text()
    assert "handler garbage on stdout" in log and "more garbage on stderr" in log


@pytest.mark.usefixtures("no_scheduler")
def test_the_seed_001_fraud_demo_waits_for_the_customer_and_finalizes(
    client: engine.LambdaClient,
    functions: Register,
    recorder: Recorder,
    wire_server: str,
    tmp_path: Path,
    runtimes: list[RuntimeProcess],
) -> None:
    name = functions("fraud_detection.handler", timeout=120, execution_timeout=90000)
    tx = {"id": 3, "amount": 6500, "card": "4111...1111", "merchant": "Example Store"}
    arn = start(client, name, json.dumps(tx))
    runtime = RuntimeProcess(
        ROOT / "demos" / "ts", "fraud_detection.handler", wire_environment(wire_server, name), tmp_path
    )
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}

    first = claim_invocation(recorder.invoked[-1])
    assert first is not None
    assert run(runtime, first) == {"output": {"Status": "PENDING"}}
    email, sms = callback_ids(client, arn, count=2)
    client.send_durable_execution_callback_success(CallbackId=email, Result=json.dumps({"approved": True}))

    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    response = run(runtime, ticket)
    assert response["output"]["Status"] == "SUCCEEDED", response
    described = client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "SUCCEEDED"
    assert json.loads(described["Result"]) == {
        "authorized": True,
        "final": True,
        "amount": 6500,
        "idempotencyKey": "finalize-3",
    }
    steps = [
        e.get("Name")
        for e in client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        if e["EventType"] == "StepSucceeded"
    ]
    assert steps[0] == "score-3" and steps[-1] == "finalize-3"
    log = runtime.logs.read_text()
    assert f"Answer with callback {email}" in log and f"Answer with callback {sms}" in log


@pytest.mark.usefixtures("no_scheduler")
def test_the_seed_000_experiment_starts_its_10_s_step_out_of_process(
    client: engine.LambdaClient,
    functions: Register,
    recorder: Recorder,
    wire_server: str,
    tmp_path: Path,
    runtimes: list[RuntimeProcess],
) -> None:
    name = functions("step_semantics.handler", timeout=3, execution_timeout=60)
    arn = start(client, name, "{}")
    env = wire_environment(wire_server, name)
    runtime = RuntimeProcess(ROOT / "demos" / "ts", "step_semantics.handler", env, tmp_path)
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    runtime.send(*invocation(ticket))

    def step_2_started() -> list[str] | None:
        assert runtime.pump(0.1) == []
        events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        seen = [f"{e['EventType']} {e.get('Name')}" for e in events if e["EventType"].startswith("Step")]
        return seen if "StepStarted Step #2" in seen else None

    assert wait_until(step_2_started, timeout=30, message="Step #2 to start") == [
        "StepStarted Step #1",
        "StepSucceeded Step #1",
        "StepStarted Step #2",
    ]
    assert runtime.pump(1) == [], "step #2's body runs 10 s"
    assert [(record["t"], record["name"]) for record in runtime.records] == [
        ("body_start", "Step #1"),
        ("body_end", "Step #1"),
        ("body_start", "Step #2"),
    ]
    runtime.proc.kill()  # what the invoker does when the function's 3 s Timeout passes
    log = runtime.logs.read_text()
    assert "Execution started." in log and "Hello from step #1" in log and "inside step 2" in log


def test_the_runtime_stays_warm_and_answers_each_invocation(tmp_path: Path, runtimes: list[RuntimeProcess]) -> None:
    code = write_code(tmp_path, "plain.mjs", PLAIN)
    runtime = RuntimeProcess(code, "plain.handler")
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}
    deadline = int(time.time() * 1000) + 5000
    first = runtime.invoke({}, {"awsRequestId": "r-1", "functionName": "plain", "deadlineMs": deadline})
    second = runtime.invoke({}, {"awsRequestId": "r-2", "functionName": "plain", "deadlineMs": deadline})
    assert (first["output"]["calls"], second["output"]["calls"]) == (1, 2)
    assert first["output"]["pid"] == second["output"]["pid"] == runtime.proc.pid
    assert second["output"]["requestId"] == "r-2"
    assert 0 < second["output"]["remaining"] <= 5000
    assert runtime.close() == 0


@pytest.mark.parametrize(
    ("file", "source", "handler", "error_type", "message"),
    [
        (
            "index.mjs",
            "export const other = async () => 1;\n",
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined",
        ),
        (
            "index.ts",
            "export const handler = async (: number) => 1;\n",
            "index.handler",
            "Runtime.ImportModuleError",
            "SyntaxError",
        ),
        (
            "index.mjs",
            "export const handler = 1;\n",
            "missing.handler",
            "Runtime.ImportModuleError",
            "Cannot find module 'missing'",
        ),
        (
            "index.mjs",
            "import 'no-such-package';\nexport const handler = 1;\n",
            "index.handler",
            "Runtime.ImportModuleError",
            "no-such-package",
        ),
    ],
    ids=["missing-export", "syntax-error", "missing-file", "missing-package"],
)
def test_a_handler_that_cannot_load_is_not_ready(
    tmp_path: Path, file: str, source: str, handler: str, error_type: str, message: str
) -> None:
    runtime = RuntimeProcess(write_code(tmp_path, file, source), handler)
    response = runtime.response(READY_TIMEOUT)
    assert response["ready"] is False
    assert response["error"]["errorType"] == error_type
    assert message in response["error"]["errorMessage"]
    assert runtime.proc.wait(timeout=10) == 1
    runtime.close()


def test_a_handler_that_throws_answers_an_error_and_stays_warm(tmp_path: Path, runtimes: list[RuntimeProcess]) -> None:
    source = "export const handler = async (event) => { if (event.fail) throw new TypeError('no such thing'); return 'ok'; };\n"
    runtime = RuntimeProcess(write_code(tmp_path, "index.mjs", source), "index.handler")
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}
    failed = runtime.invoke({"fail": True}, {"awsRequestId": "r-1"})
    assert (failed["error"]["errorType"], failed["error"]["errorMessage"]) == ("TypeError", "no such thing")
    assert runtime.invoke({}, {"awsRequestId": "r-2"}) == {"output": "ok"}


@pytest.mark.parametrize(
    "handler", ["step_semantics.handler", "step_semantics_scenarios.atMostOnceNoRetry", "fraud_detection.handler"]
)
def test_the_seed_demos_load_as_written(handler: str, tmp_path: Path) -> None:
    runtime = RuntimeProcess(ROOT / "demos" / "ts", handler, log_dir=tmp_path)
    try:
        assert runtime.response(READY_TIMEOUT) == {"ready": True}
    finally:
        assert runtime.close() == 0


def test_an_error_no_invocation_awaited_ends_the_runtime_after_answering(
    tmp_path: Path, runtimes: list[RuntimeProcess]
) -> None:
    source = "export const handler = async () => { setTimeout(() => { throw new RangeError('late'); }, 0); return new Promise(() => {}); };\n"
    runtime = RuntimeProcess(write_code(tmp_path, "index.mjs", source), "index.handler")
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}
    error = runtime.invoke({}, {"awsRequestId": "r-1"})["error"]
    assert (error["errorType"], error["errorMessage"]) == ("Runtime.UncaughtException", "late")
    assert runtime.proc.wait(timeout=10) == 1


def test_a_handler_that_exits_closes_the_responses_without_an_answer(
    tmp_path: Path, runtimes: list[RuntimeProcess]
) -> None:
    runtime = RuntimeProcess(
        write_code(tmp_path, "index.mjs", "export const handler = () => process.exit(7);\n"), "index.handler"
    )
    runtimes.append(runtime)
    assert runtime.response(READY_TIMEOUT) == {"ready": True}
    with pytest.raises(AssertionError, match="fd 3 closed"):
        runtime.invoke({}, {"awsRequestId": "r-1"})
    assert runtime.proc.wait(timeout=10) == 7  # the invoker reports Runtime.ExitError


def test_the_node_binary_is_the_projects_node_22_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURABLE_NODE", raising=False)
    installed = node.node_binary()
    assert installed == node.INSTALLED_NODE
    version = subprocess.run([installed, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v22."), version
    monkeypatch.setenv("DURABLE_NODE", str(tmp_path / "no-node"))
    with pytest.raises(node.NodeRuntimeMissing, match="DURABLE_NODE"):
        node.node_binary()
    monkeypatch.setenv("DURABLE_NODE", str(installed))
    assert node.command() == [str(installed), str(node.bootstrap())]
