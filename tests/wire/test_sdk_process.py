"""An unchanged SDK handler run as a plain ``python`` subprocess completes a step, a wait and a callback.

The test plays the part Lambda's service plays for a function: it claims each invocation
through the engine's claim duty (as the worker does), hands the handler process the invocation
input Lambda would, and reports the invocation's end through the engine's end duty. The handler
process (``sdk_process/handler_runner.py``) gets nothing but ``AWS_ENDPOINT_URL_LAMBDA``, a real
access key and a region (``AWS_REGION`` and ``AWS_DEFAULT_REGION``, as Lambda sets them): the SDK's own default ``boto3.client("lambda")`` checkpoints over HTTP.

Keeping the worker out, without racing it: a Celery message is only sent by whoever makes an
invocation owed while no invocation is running. So the test makes every invocation owed from
its own process, whose dispatcher only records (``Recorder``): the first by starting the
execution in-process; the next ones by holding the invocation that ran the handler (its lease)
until what the handler waits for is done — past the wait's scheduled end, or after answering
the callback over HTTP — and only then reporting its end. Whether the scheduler fired the wait
meanwhile or the end duty fires it, the engine then owes the next invocation at the end, in
this process. The invocation rows' pid proves it: every one ran here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.contrib.django.models import Execution, Invocation
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.unit import current_dispatcher, set_dispatcher
from tests.conftest import wait_until
from tests.engine.support import Recorder
from tests.wire.conftest import REGION, callback_id, credentials, finished, history

HERE = Path(__file__).resolve().parent / "sdk_process"
CODE = Path(__file__).resolve().parents[1] / "handlers"  # the handler file's folder, for the subprocess
HANDLER = "tests.handlers.plain_sdk.handler"  # the same file, as the worker imports it
ANSWER = '{"approved": true}'


@dataclass
class Ran:
    ticket: Ticket
    output: dict[str, Any]


class SubprocessInvoker:
    """Runs each owed invocation of one execution in a fresh ``python`` process."""

    def __init__(self, endpoint: str, recorder: Recorder, workdir: Path) -> None:
        self.endpoint, self.recorder, self.workdir = endpoint, recorder, workdir

    def run_owed(self, execution_id: int) -> Ran:
        """Claim the invocation the engine owes (it must have asked this process for it) and run it."""
        assert execution_id in self.recorder.invoked, "the engine did not ask this process for the invocation"
        self.recorder.invoked.remove(execution_id)
        ticket = claim_invocation(execution_id)
        assert ticket is not None, "the owed invocation was claimed by someone else"
        return Ran(ticket, self._run_handler(ticket))

    def end(self, ran: Ran) -> None:
        complete_invocation(ran.ticket, ran.output, None)

    def _run_handler(self, ticket: Ticket) -> dict[str, Any]:
        source = self.workdir / f"input-{ticket.seq}.json"
        target = self.workdir / f"output-{ticket.seq}.json"
        source.write_text(json.dumps(invocation_input(ticket)))
        keys = credentials()
        env = {
            "AWS_ENDPOINT_URL_LAMBDA": self.endpoint,
            "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
            # Lambda's runtime sets both; boto3 reads only AWS_DEFAULT_REGION (NoRegionError without it).
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        deadline_ms = str(int(ticket.deadline.timestamp() * 1000))
        argv = [sys.executable, "handler_runner.py", str(CODE), "plain_sdk.handler", str(source), str(target)]
        done = subprocess.run(
            [*argv, ticket.request_id, deadline_ms], cwd=HERE, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(target.read_text()))


def invocation_input(ticket: Ticket) -> dict[str, Any]:
    """The JSON event Lambda hands a durable function (the SDK's DurableExecutionInvocationInput)."""
    return {
        "DurableExecutionArn": ticket.arn,
        "CheckpointToken": ticket.token,
        "InitialExecutionState": {"Operations": ticket.operations, "NextMarker": ""},
    }


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """This process's dispatcher, while the test runs: it records and sends nothing to Celery."""
    saved = current_dispatcher()
    recording = Recorder()
    engine.configure(dispatcher=recording)
    yield recording
    set_dispatcher(saved)


def shape(events: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], int]:
    """Each operation's event in order (type, name, which fields its details carry), and how many
    invocations ended.

    Where InvocationCompleted falls among the service's own events (a wait firing, a callback
    answered) is timing, in the worker as here; how many there are is not. An execution's own
    events are named after the execution, which differs.
    """
    ops = [
        (
            e["EventType"],
            None if e["EventType"].startswith("Execution") else e.get("Name"),
            sorted(e.get(f"{e['EventType']}Details", {})),
        )
        for e in events
        if e["EventType"] != "InvocationCompleted"
    ]
    return ops, sum(e["EventType"] == "InvocationCompleted" for e in events)


def test_unchanged_handler_in_a_plain_python_process(
    wire_server: str, lambda_client: Any, make_function: Any, recorder: Recorder, tmp_path: Path
) -> None:
    name = make_function(HANDLER)
    arn = engine.client().invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 21}')["DurableExecutionArn"]
    execution_id = Execution.objects.get(arn=arn).pk
    invoker = SubprocessInvoker(wire_server, recorder, tmp_path)

    # 1: the step, then the wait; held until the wait's end, so that the next invocation is owed here.
    first = invoker.run_owed(execution_id)
    assert first.output == {"Status": "PENDING"}
    started = next(e for e in history(lambda_client, arn) if e["EventType"] == "WaitStarted")
    wait_ends = started["WaitStartedDetails"]["ScheduledEndTimestamp"]
    time.sleep(max(0.0, (wait_ends - datetime.now(UTC)).total_seconds()) + 0.05)
    invoker.end(first)

    # 2: the wait is over, the callback starts; answered over HTTP before the invocation ends.
    second = invoker.run_owed(execution_id)
    assert second.output == {"Status": "PENDING"}
    lambda_client.send_durable_execution_callback_success(CallbackId=callback_id(lambda_client, arn), Result=ANSWER)
    invoker.end(second)

    # 3: the callback's result; the handler returns.
    third = invoker.run_owed(execution_id)
    assert third.output["Status"] == "SUCCEEDED", third.output
    invoker.end(third)

    described = lambda_client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "SUCCEEDED"
    assert json.loads(described["Result"]) == {"doubled": 42, "approval": ANSWER}
    assert list(Invocation.objects.filter(execution_id=execution_id).values_list("pid", flat=True)) == [os.getpid()] * 3
    assert recorder.invoked == []

    # The same handler, run by the worker: the same history.
    worker_shape = shape(history(lambda_client, _run_in_worker(lambda_client, make_function)))
    assert shape(history(lambda_client, arn)) == worker_shape


def _run_in_worker(lambda_client: Any, make_function: Any) -> str:
    name = make_function(HANDLER)
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 21}')["DurableExecutionArn"]
    callback = callback_id(lambda_client, arn)
    execution = Execution.objects.filter(arn=arn)
    wait_until(lambda: not execution.values_list("running", flat=True)[0], message="the invocation to end")
    lambda_client.send_durable_execution_callback_success(CallbackId=callback, Result=ANSWER)
    assert finished(lambda_client, arn)["Status"] == "SUCCEEDED"
    return arn
