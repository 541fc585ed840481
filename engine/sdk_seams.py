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
    stop signal) ends that wait at once. The poll interval and the 1 s batch window stay the
    SDK's.
    """
    _sdk_stop_checkpointing(self)
    self._checkpoint_queue.put(sdk_state._Signal.REFRESH_WAKE)


sdk_state.ExecutionState.stop_checkpointing = _stop_checkpointing_and_wake  # type: ignore[method-assign]


_sdk_read_timeout = sdk_state.ExecutionState._read_timeout
_DRAIN_ONLY_SECONDS = 1e-6


def _read_timeout_without_idle_wait(
    self: sdk_state.ExecutionState, batch: sdk_state._BatchAccumulator, now: float, deadline: float
) -> float:
    """SDK 3.0.0's ``ExecutionState._read_timeout``, minus a pointless wait.

    Once a batch holds a synchronous checkpoint, the SDK keeps reading its queue for 1 ms
    (``_BLOCKED_CALLER_WAIT_SECONDS``) so that sibling branch threads of a map or parallel can
    join the batch. Without branch pools the only thread that creates checkpoints is the one
    now blocked on this batch, so nothing can arrive: the wait only adds 1 ms to every step.
    Then the batch still takes whatever is already queued and is sent at once. With branches
    the SDK's wait is kept. Batch boundaries already depend on timing, so the set of possible
    behaviours is unchanged. Contract tests pin the SDK internals this relies on.
    """
    timeout = _sdk_read_timeout(self, batch, now, deadline)
    if batch.has_blocked_caller and not self._branch_pools:
        return min(timeout, _DRAIN_ONLY_SECONDS)
    return timeout


sdk_state.ExecutionState._read_timeout = _read_timeout_without_idle_wait  # type: ignore[method-assign]
