"""Contract tests of ``engine.sdk_seams``: the SDK internals they rely on, and what they change."""

from __future__ import annotations

import contextvars
import inspect
import json
import queue
import re
import threading
from typing import Any

from aws_durable_execution_sdk_python import plugin as sdk_plugin
from aws_durable_execution_sdk_python import state as sdk_state
from aws_durable_execution_sdk_python.context import DurableContext
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
    durable_execution,
)
from aws_durable_execution_sdk_python.lambda_service import (
    CheckpointOutput,
    CheckpointUpdatedExecutionState,
    ExecutionDetails,
    Operation,
    OperationStatus,
    OperationType,
    StateOutput,
)

from engine import invoker, sdk_seams


def test_stopping_the_checkpoint_thread_wakes_it_instead_of_letting_its_poll_run_out() -> None:
    assert sdk_state.ExecutionState.stop_checkpointing is sdk_seams._stop_checkpointing_and_wake
    state = sdk_state.ExecutionState("arn", "token", {}, invoker.EngineServiceClient(), sdk_plugin.PluginExecutor([]))
    reads: list[tuple[bool, str]] = []  # (stop already signalled when the read returned, what it returned)
    sdk_get = state._checkpoint_queue.get

    def recording_get(*args: Any, **kwargs: Any) -> Any:
        try:
            item = sdk_get(*args, **kwargs)
        except queue.Empty:
            reads.append((state._checkpointing_stopped.is_set(), "timed out"))
            raise
        reads.append((state._checkpointing_stopped.is_set(), type(item).__name__))
        return item

    state._checkpoint_queue.get = recording_get  # type: ignore[method-assign]
    thread = threading.Thread(target=state.checkpoint_batches_forever)
    thread.start()
    state.stop_checkpointing()
    thread.join(timeout=10)
    assert not thread.is_alive()
    # A read that ended after the stop ended on the wake-up item, never by waiting out its poll.
    assert all(outcome == "_Signal" for stopped, outcome in reads if stopped), reads


def test_the_wake_up_item_makes_the_thread_recheck_the_stop_signal() -> None:
    # The thread treats any _Signal as "look again": it consumes the refresh wake and loops,
    # and both read loops check the stop signal before reading again.
    assert sdk_state._Signal.REFRESH_WAKE in sdk_state._Signal
    for reader in (
        sdk_state.ExecutionState._wait_for_first_operation,
        sdk_state.ExecutionState._collect_checkpoint_batch,
    ):
        names = reader.__code__.co_names
        assert "_Signal" in names and "_consume_refresh_wake" in names and "_checkpointing_stopped" in names
    assert sdk_state._STOP_SIGNAL_POLL_SECONDS == 0.1  # unchanged: batching keeps the SDK's timing


# --- the invocation's threads ------------------------------------------------------------------

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("_seen", default="unset")


class _NullService:
    """A service that accepts every checkpoint: the SDK alone, for seams about its threads."""

    def checkpoint(self, durable_execution_arn: str, checkpoint_token: str, updates: Any, client_token: Any = None):
        return CheckpointOutput(checkpoint_token, CheckpointUpdatedExecutionState(operations=[]))

    def get_execution_state(self, *args: Any, **kwargs: Any) -> StateOutput:
        return StateOutput(operations=[], next_marker=None)


@durable_execution
def _records_its_threads(event: Any, context: DurableContext) -> dict[str, Any]:
    before = _seen.get()
    _seen.set("set by an earlier invocation")
    context.step(lambda _: None, name="s1")  # a checkpoint: the batcher thread runs too
    return {"handler": threading.get_ident(), "before": before}


def _invoke_records_its_threads() -> dict[str, Any]:
    execution = Operation(
        operation_id="ex",
        operation_type=OperationType.EXECUTION,
        status=OperationStatus.STARTED,
        execution_details=ExecutionDetails(input_payload="{}"),
    )
    event = DurableExecutionInvocationInputWithClient(
        durable_execution_arn="arn:aws:lambda:us-east-1:000000000000:function:f/durable-execution/run/ex",
        checkpoint_token="t",
        initial_execution_state=InitialExecutionState(operations=[execution], next_marker=""),
        service_client=_NullService(),
    )
    output = _records_its_threads(event, None)
    assert output["Status"] == "SUCCEEDED", output
    return json.loads(output["Result"])


def test_the_sdk_makes_its_invocation_threads_through_the_name_the_seam_replaces() -> None:
    from aws_durable_execution_sdk_python import execution as sdk_execution

    assert sdk_execution.ThreadPoolExecutor is sdk_seams._ThreadsKeptForTheNextInvocation
    wrapper = inspect.getsource(sdk_execution.durable_execution)
    assert wrapper.count("ThreadPoolExecutor(") == 1 and "with ThreadPoolExecutor(" in wrapper
    # The executor is used only to submit work: no shutdown, map or attribute the seam lacks.
    assert set(re.findall(r"\bexecutor\.(\w+)", wrapper)) == {"submit"}


def test_an_invocation_reuses_the_threads_of_the_one_before_it_on_the_same_caller() -> None:
    first = _invoke_records_its_threads()
    pool = sdk_seams._kept.pool
    threads = {thread.ident for thread in pool._threads}
    second = _invoke_records_its_threads()
    assert sdk_seams._kept.pool is pool and {thread.ident for thread in pool._threads} == threads
    assert len(threads) == 2 and {first["handler"], second["handler"]} <= threads
    assert pool._work_queue.empty()  # nothing left queued behind the invocation
    # Each invocation's code ran in a fresh copy of the caller's context.
    assert first["before"] == second["before"] == "unset"
    on_another_caller: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: on_another_caller.append(_invoke_records_its_threads()))
    caller.start()
    caller.join(timeout=30)
    assert on_another_caller and on_another_caller[0]["handler"] not in threads
