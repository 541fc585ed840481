"""RequestResponse invokes wait for their executions without taking every web server thread.

Measured before the cap: 8 RequestResponse invokes of a function waiting on a callback
(Timeout 3 s, ExecutionTimeout 10 s) held all 8 web server threads (Waitress then; Gunicorn's
gthread worker has the same 8) for 10.1-10.3 s each, and a GetFunction sent meanwhile waited
9.2 s for a thread: a callback answer would have waited too.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from durable_site.management.commands.durable_up import WEB_THREADS
from tests.conftest import wait_until
from tests.wire.conftest import boto3_client, callback_id, credentials
from wire.views import THREADS_KEPT_FREE

SLOTS = WEB_THREADS - THREADS_KEPT_FREE
# Far below the executions' timeout (120 s), which a request starved of threads would wait for;
# far above a request's time on this shared, busy machine.
PROMPT = 30.0


def test_waiting_sync_invokes_leave_threads_for_callbacks(
    wire_server: str, lambda_client: Any, make_function: Any
) -> None:
    name = make_function("tests.handlers.engine_pg.parked", execution_timeout=120)
    answers: list[dict[str, Any]] = []

    def wait_for_end() -> None:
        answer = boto3_client(wire_server, credentials()).invoke(FunctionName=name, Payload=b"{}")
        answers.append({"StatusCode": answer["StatusCode"], "Payload": json.loads(answer["Payload"].read())})

    waiting = [threading.Thread(target=wait_for_end, daemon=True) for _ in range(SLOTS)]
    for thread in waiting:
        thread.start()

    def all_parked() -> list[str] | None:
        running = lambda_client.list_durable_executions_by_function(FunctionName=name, Statuses=["RUNNING"])
        arns = [e["DurableExecutionArn"] for e in running["DurableExecutions"]]
        return arns if len(arns) == SLOTS else None

    arns = wait_until(all_parked, timeout=60, interval=0.2, message=f"{SLOTS} synchronous invokes waiting")

    started = time.monotonic()
    with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
        lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert time.monotonic() - started < PROMPT
    listed = lambda_client.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"]
    assert len(listed) == SLOTS  # the refused invoke started nothing

    for arn in arns:  # answered at once, on the threads the waiting invokes leave free
        callback = callback_id(lambda_client, arn)
        started = time.monotonic()
        lambda_client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"go"')
        assert time.monotonic() - started < PROMPT
    for thread in waiting:
        thread.join(timeout=60)
    assert answers == [{"StatusCode": 200, "Payload": {"result": '"go"'}}] * SLOTS
