"""Durable Lab's record of step bodies in a Python runtime process (stdlib and the handler's SDK).

``python_bootstrap.py`` puts this directory on ``sys.path`` (its ``.dist-info`` names the entry
point the SDK loads through ``DURABLE_EXECUTION_PLUGINS=durable-lab-record``) and opens the
channel. Each step body's start and end is sent to the invoker as ``{"record": {...}}`` on the
answer pipe, and the body waits for ``{"continue": true}`` on stdin: the invoker writes it to the
invocation's journal, and kills this process instead if an armed fault is due there. An SDK without
the plugin interface runs its handlers unrecorded.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python.plugin import (
    DurableInstrumentationPlugin,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)

# (send a record, wait for the answer); set by the bootstrap. None: records go nowhere.
channel: tuple[Callable[[dict[str, Any]], None], Callable[[], str]] | None = None
_lock = threading.Lock()  # step bodies of parallel branches run on threads: one exchange at a time


def _exchange(record: dict[str, Any]) -> None:
    if channel is None:
        return
    send, receive = channel
    with _lock:
        # What the body printed so far reaches the invoker first: its log lines are the body's.
        sys.stdout.flush()
        sys.stderr.flush()
        send({"record": record})
        receive()


class RecordPlugin(DurableInstrumentationPlugin):
    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if info.operation_type == OperationType.STEP:
            record = {"t": "body_start", "op_id": info.operation_id, "name": info.name, "attempt": info.attempt or 1}
            _exchange(record)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if info.operation_type == OperationType.STEP:
            outcome = info.outcome.value.lower()
            _exchange({"t": "body_end", "op_id": info.operation_id, "name": info.name, "outcome": outcome})


class RecordPluginFactory:
    def create_plugin(self, info: Any) -> DurableInstrumentationPlugin:
        return RecordPlugin()


plugin_factory = RecordPluginFactory()
