"""Changes to SDK 3.0.0 internals that make invocations cheaper without changing what they do.

Each is installed once, on import of the ``engine`` package, and pinned by a contract test in
``tests/engine/test_sdk_contract.py``: an SDK upgrade that moves the seam fails there first.
(The journal's plugin seams live with the journal, in ``engine.journal``.)
"""

from __future__ import annotations

from aws_durable_execution_sdk_python import state as sdk_state

_sdk_stop_checkpointing = sdk_state.ExecutionState.stop_checkpointing


def _stop_checkpointing_and_wake(self: sdk_state.ExecutionState) -> None:
    """The SDK's ``stop_checkpointing``, plus a wake-up for the checkpoint thread.

    Between batches the checkpoint thread blocks on its queue for up to
    ``_STOP_SIGNAL_POLL_SECONDS`` (100 ms) before it looks at the stop signal again, and the end
    of every invocation joins that thread: every invocation ended up to 100 ms after its handler
    returned. The SDK's own wake-up item (``REFRESH_WAKE``: the thread takes it, then re-checks the
    stop signal) ends that wait at once. Batching inside an invocation is unchanged: the poll
    interval, the 1 s batch window and the 1 ms wait for a blocked caller are the SDK's.
    """
    _sdk_stop_checkpointing(self)
    self._checkpoint_queue.put(sdk_state._Signal.REFRESH_WAKE)


sdk_state.ExecutionState.stop_checkpointing = _stop_checkpointing_and_wake  # type: ignore[method-assign]
