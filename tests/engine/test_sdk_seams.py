"""Contract tests of ``engine.sdk_seams``: the SDK internals they rely on, and what they change."""

from __future__ import annotations

import queue
import threading
from typing import Any

from aws_durable_execution_sdk_python import plugin as sdk_plugin
from aws_durable_execution_sdk_python import state as sdk_state

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
