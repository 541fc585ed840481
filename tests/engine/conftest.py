"""Fixtures of the engine's own tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import engine
from engine import speedups
from engine.duties.unit import current_dispatcher, set_dispatcher
from tests.conftest import Stack
from tests.engine.support import Recorder, Register, ThreadDispatcher


@pytest.fixture
def in_process() -> Iterator[ThreadDispatcher]:
    """Run invocations in threads of the test process; the Celery dispatcher comes back afterwards."""
    saved = current_dispatcher()
    dispatcher = ThreadDispatcher()
    engine.configure(dispatcher=dispatcher)
    speedups.install()  # this process runs the invocations, as a worker child would
    try:
        yield dispatcher
    finally:
        dispatcher.join()
        set_dispatcher(saved)


@pytest.fixture
def no_scheduler(stack: Stack) -> Iterator[None]:
    """Stop the scheduler for the test: its timer firing and re-dispatch rounds would do what
    the test wants to see done (or not done) by something else; it is started again after."""
    stack.stop_scheduler()
    try:
        yield
    finally:
        stack.start_scheduler()


@pytest.fixture
def sdk_as_shipped(in_process: ThreadDispatcher) -> Iterator[ThreadDispatcher]:
    """``in_process``, with every SDK seam taken out: the SDK runs exactly as AWS ships it."""
    speedups.uninstall()
    try:
        yield in_process
    finally:
        in_process.join()
        speedups.install()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Queue nothing: the test claims and runs invocations itself."""
    saved = current_dispatcher()
    recording = Recorder()
    engine.configure(dispatcher=recording)
    try:
        yield recording
    finally:
        set_dispatcher(saved)


@pytest.fixture
def client() -> engine.LambdaClient:
    return engine.client()


@pytest.fixture
def functions(client: engine.LambdaClient) -> Iterator[Register]:
    """Register throwaway functions; stop their executions that are still running afterwards."""
    names: list[str] = []

    def register(handler: str, *, timeout: int = 30, execution_timeout: int | None = 300, **fields: Any) -> str:
        short = handler.rsplit(".", 1)[1].replace("_", "-")
        name = f"t-{short}-{uuid.uuid4().hex[:8]}"
        if execution_timeout is not None:
            fields["DurableConfig"] = {"ExecutionTimeout": execution_timeout, "RetentionPeriodInDays": 1}
        client.create_function(FunctionName=name, Handler=handler, Timeout=timeout, **fields)
        names.append(name)
        return name

    yield register
    for name in names:
        live = ["RUNNING", "PAUSING", "PAUSED"]
        running = client.list_durable_executions_by_function(FunctionName=name, Statuses=live, MaxItems=1000)
        for summary in running["DurableExecutions"]:
            with contextlib.suppress(engine.errors.InvalidParameterValueException):  # it ended meanwhile
                client.stop_durable_execution(DurableExecutionArn=summary["DurableExecutionArn"])
